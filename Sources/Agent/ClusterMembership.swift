import AgentAPI
import Cluster
import Controller
import Foundation
import Logging
import Raft
import Synchronization

/// How this agent takes part in a cluster: `agentd --bootstrap` (the first server),
/// `agentd --server --join HOST:PORT --token T` (every next server, with a cluster port), or
/// `agentd --join HOST:PORT --token T` (a client: runs services, follows the servers).
public struct ClusterSettings: Sendable {
    public enum Start: Sendable {
        case bootstrap
        /// Join through the first of `servers` that answers (each tried in turn).
        case join(servers: [HostPort], token: String)
        /// Form a new cluster with the other servers started so (`--bootstrap-expect`), all
        /// given the CA and token in `caDirectory`, reached at `servers` or through them.
        case form(expect: Int, servers: [HostPort], caDirectory: String)
    }

    public var start: Start
    /// A server takes part in Raft; a client does not (and does not listen).
    public var role: JoinRequest.Role
    /// Where the cluster port listens.
    public var listenHost: String
    public var listenPort: Int
    /// `host:port` other agents reach the cluster port at.
    public var advertiseAddress: String
    /// Names the CA a bootstrap makes.
    public var clusterID: String
    /// How long the node certificates the CA holder issues last; agents renew at two thirds.
    public var certificateLifetime: Duration

    public init(
        start: Start, role: JoinRequest.Role = .server, listenHost: String, listenPort: Int, advertiseAddress: String,
        clusterID: String = "flotilla", certificateLifetime: Duration? = nil
    ) {
        self.start = start
        self.role = role
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.advertiseAddress = advertiseAddress
        self.clusterID = clusterID
        self.certificateLifetime = certificateLifetime ?? ClusterCA.defaultNodeCertificateLifetime
    }

    /// The IP address a node certificate names: the advertised host when it is one.
    var certificateAddresses: [String] { HostPort(advertiseAddress)?.ipAddress.map { [$0] } ?? [] }
}

/// This agent's cluster identity and transport, made before its Raft node (whose id the
/// identity holds), and, on a server, the loops that keep membership moving once the node
/// runs: transport peers follow the replicated list of servers; the bootstrap server records
/// itself; the leader promotes caught-up learners. A client's transport dials the servers
/// it follows (``ServerFollower``) and answers nothing.
final class ClusterMembership: Sendable {
    let identity: ClusterIdentity
    let transport: ClusterTransport
    /// Where the identity's files are.
    let directory: String
    /// The node's credentials now (renewed in their course, `CertificateRenewal`).
    let credentials: Mutex<NodeCredentials>

    /// ``credentials`` in swift-nio-ssl's types, as they are now: what the TCP API presents.
    @Sendable func currentTLSMaterial() throws -> ClusterTLSMaterial {
        try credentials.withLock { $0 }.tlsMaterial()
    }
    let settings: ClusterSettings
    let nodeName: String
    private let receiver = Deferred<any RaftMessageReceiver>()
    let gateway = Deferred<ClusterGateway>()
    let logger: Logger
    /// Admits joins and renews certificates, on a server (once it holds the CA).
    let joinAuthority: ServerJoinAuthority?
    /// The join token, on a server.
    let joinTokens: (any JoinTokenKeeper)?
    /// Answers API requests clients relay (a server's).
    let forwardedAPI: ForwardedAPIResponder
    /// The servers the join answered with (empty when the identity was loaded).
    let joinedServers: [MemberRecord]
    /// The Raft members as the node last knew them: only they may speak Raft (a client's
    /// certificate is the cluster's too, and a hello's id is the sender's word).
    private let raftMembers = Deferred<@Sendable () -> Set<NodeID>>()
    /// This node's own instance output, for other agents that ask (``InstanceLogCall``).
    let localLogs = Deferred<any InstanceLogSource>()
    /// The streams this agent serves to others (``StreamCall``).
    let streams = StreamSessions()

    /// Loads the identity kept under `<state>/cluster`, or makes it (bootstrap) or gets it
    /// (join); then the transport, not yet listening.
    static func prepare(settings: ClusterSettings, stateDirectory: String, nodeName: String, logger: Logger) async throws -> ClusterMembership {
        let directory = stateDirectory + "/cluster"
        let identity: ClusterIdentity
        var joinedServers: [MemberRecord] = []
        if let saved = try ClusterIdentity.load(from: directory) {
            guard saved.role == settings.role else {
                throw AgentError.configuration(
                    "\(directory) holds the identity of a cluster \(saved.role == .server ? "server" : "client"); this agent was started as a \(settings.role == .server ? "server" : "client") (\(saved.role == .server ? "give --server" : "leave --server out"), or remove the agent from the cluster and that directory to join anew)")
            }
            identity = saved
            logger.info("cluster identity loaded", metadata: ["id": "\(saved.nodeID)", "directory": "\(directory)"])
        } else {
            switch settings.start {
            case .bootstrap:
                identity = try ClusterIdentity.bootstrap(
                    directory: directory, clusterID: settings.clusterID, nodeName: nodeName, ipAddresses: settings.certificateAddresses,
                    certificateLifetime: settings.certificateLifetime)
                logger.notice("bootstrapped a new cluster", metadata: ["token file": "\(directory)/join-token"])
            case .join(let targets, let tokenText):
                let token = try JoinToken(parsing: tokenText)
                let servers: [ClusterPeer]
                (identity, servers) = try await join(directory: directory, targets: targets, token: token, nodeName: nodeName, settings: settings, logger: logger)
                joinedServers = servers.map { MemberRecord(id: $0.id, name: $0.name, address: HostPort(host: $0.host, port: $0.port).description, addedIndex: 0) }
                logger.notice("joined the cluster", metadata: ["id": "\(identity.nodeID)", "as": "\(settings.role)"])
            case .form(let expect, let servers, let caDirectory):
                let (ca, token) = try ClusterIdentity.loadAuthority(from: caDirectory)
                let credentials = try ca.issueNodeCredentials(
                    nodeName: nodeName, ipAddresses: settings.certificateAddresses, now: Date(), lifetime: settings.certificateLifetime)
                logger.notice("forming a new cluster", metadata: ["expect": "\(expect)", "servers": "\(servers.map(\.description).joined(separator: ", "))"])
                let formation = try await ServerFormation.form(
                    expect: expect, peers: servers, credentials: credentials, settings: settings, nodeName: nodeName, logger: logger)
                guard let own = formation.first(where: { NodeName.same($0.name, nodeName) }) else { throw FormationError.leftOut(formation.map(\.name)) }
                identity = ClusterIdentity(nodeID: own.id, role: .server, credentials: credentials, ca: ca, joinToken: token, formation: formation)
                try identity.save(to: directory)
                logger.notice(
                    "formed the cluster", metadata: ["id": "\(own.id)", "servers": "\(formation.map { "\($0.id)=\($0.name)" }.joined(separator: ", "))"])
            }
        }
        return try ClusterMembership(
            identity: identity, settings: settings, directory: directory, nodeName: nodeName, joinedServers: joinedServers, logger: logger)
    }

    /// Joins, trying again while the server cannot be reached (it may still be starting), as
    /// Consul's and Nomad's retry_join do; a refusal or a CA that is not the token's ends it.
    /// Every address is asked in turn; the delay grows after a round none of them admitted.
    private static func join(
        directory: String, targets: [HostPort], token: JoinToken, nodeName: String, settings: ClusterSettings, logger: Logger
    ) async throws -> (ClusterIdentity, [ClusterPeer]) {
        var delay = Duration.milliseconds(200)
        while true {
            for target in targets {
                do {
                    return try await ClusterIdentity.join(
                        directory: directory, host: target.host, port: target.port, token: token, nodeName: nodeName, role: settings.role,
                        advertiseAddress: settings.advertiseAddress)
                } catch let error as JoinError where !error.isFinal {
                    logger.warning("cannot join yet", metadata: ["through": "\(target)", "error": "\(error)"])
                }
            }
            logger.info("trying to join again", metadata: ["in": "\(delay)"])
            try await Task.sleep(for: delay)
            delay = min(delay * 2, .seconds(10))
        }
    }

    private init(
        identity: ClusterIdentity, settings: ClusterSettings, directory: String, nodeName: String, joinedServers: [MemberRecord], logger: Logger
    ) throws {
        self.identity = identity
        self.joinedServers = joinedServers
        forwardedAPI = ForwardedAPIResponder(logger: logger)
        self.directory = directory
        credentials = Mutex(identity.credentials)
        self.settings = settings
        self.nodeName = nodeName
        self.logger = logger
        let gateway = self.gateway
        let authority =
            identity.role == .server
            ? ServerJoinAuthority(
                ca: identity.ca, token: identity.joinToken, certificateLifetime: settings.certificateLifetime,
                isMember: { id, name in
                    guard let gateway = gateway.value else { throw JoinUnavailable(reason: "the server is still starting") }
                    return try await gateway.read { state in
                        // Before the first leader of a formed cluster has recorded its members
                        // (then the token), membership cannot be told: renew.
                        guard state.joinToken != nil else { return true }
                        return state.members[id].map { NodeName.same($0.name, name) } ?? false
                    }
                }
            ) { request in
                guard let gateway = gateway.value else { throw JoinUnavailable(reason: "the server is still starting") }
                // New ids follow the formed servers' once the first leader has recorded them
                // (and then the token): before, a new member could be given a formed one's id.
                if identity.formation != nil, (try? await gateway.read { $0.joinToken }) == nil {
                    throw JoinUnavailable(reason: "the cluster has just formed and its first leader has not recorded its servers yet")
                }
                do {
                    return try await ClusterMembership.admit(request, through: gateway)
                } catch let error as APIError where [APIErrorCode.noLeader, APIErrorCode.timeout, APIErrorCode.overloaded].contains(error.code) {
                    throw JoinUnavailable(reason: error.message)
                }
            } : nil
        joinAuthority = authority
        joinTokens = authority.map { ReplicatedJoinToken(authority: $0, identity: identity, directory: directory, gateway: gateway) }
        var configuration = TransportConfiguration(
            localID: identity.nodeID, localName: nodeName, listenHost: settings.listenHost, listenPort: settings.listenPort,
            tls: try identity.credentials.tlsMaterial(), verifier: identity.credentials.peerVerifier)
        configuration.dialsEveryPeer = identity.role == .client
        transport = try ClusterTransport(
            configuration: configuration, receiver: ForwardingReceiver(target: receiver, raftMembers: raftMembers), joinAuthority: authority,
            callHandler: identity.role == .server
                ? DeferredCallHandler(gateway: gateway, api: forwardedAPI, authority: authority, logs: localLogs, streams: streams)
                : ClientCallHandler(logs: localLogs, streams: streams),
            formationResponder: identity.formation.map { FormedResponder(servers: $0) }, logger: logger)
    }

    /// Whether this server starts a new group (its storage then holds itself as the only voter).
    /// A server of a formation starts with every server of it as a voter (each with the same
    /// bootstrap log, ``BootstrapLog``).
    var bootstrapMembership: ConfState? {
        if let formation = identity.formation { return ConfState(voters: Set(formation.map(\.id))) }
        return identity.ca != nil && identity.nodeID == 1 ? ConfState(voters: [1]) : nil
    }

    /// Connects the node once it exists.
    func attach(node: RaftNode<ControllerMachine>, gateway: ClusterGateway) {
        receiver.set(node)
        raftMembers.set { node.lastKnownMembers }
        self.gateway.set(gateway)
    }

    /// A joining server: recorded in the member list, then added to Raft as a learner; the
    /// leader promotes it once it has caught up. A joining client: recorded only. Either is
    /// answered with its id and the servers.
    static func admit(_ request: JoinRequest, through gateway: ClusterGateway) async throws -> (id: NodeID, servers: [ClusterPeer]) {
        let role: MemberRole = request.role == .server ? .server : .client
        // A server joining again under its name (its state lost) keeps its id. Two joins at
        // once may pick the same new id; the log refuses the second, which picks again.
        var attempt = 0
        var id: NodeID
        // The address under the name at the first read (nil: no member): a join that finds,
        // asking again, another agent recorded under it since came second in a race with it.
        var firstAddress: String?
        while true {
            // Names compare as the transport and the certificates do, case aside: a client
            // joining as "S1" beside server "s1" would otherwise be a new member whose
            // certificate the transport takes for s1's.
            // A consistent read: a replica behind the log could give out the id of a member
            // removed in an entry it has not applied yet. Without a leader to confirm it in
            // time, the joiner is told "not now" (a timeout) and asks again.
            let existing = try await gateway.read(consistent: true) { state in
                let member = state.members.values.first { NodeName.same($0.name, request.nodeName) }
                // Up unless marked down: a member whose node has not registered yet (it joined a
                // moment ago) counts as up too.
                let records = state.nodes.values.filter { NodeName.same($0.name, request.nodeName) }
                let up = records.isEmpty || records.contains { !$0.isDown }
                return (member: member, nextID: state.nextMemberID, up: up, unregistered: records.isEmpty)
            }
            if attempt > 0, let member = existing.member, member.address != firstAddress, member.address != request.advertiseAddress {
                throw APIError(
                    code: "member_conflict",
                    message: "another agent under the name \(member.name) joined from \(member.address) while this join from \(request.advertiseAddress) was under way; "
                        + "join under a name of your own (--node-name)")
            }
            if attempt == 0 { firstAddress = existing.member?.address }
            if let member = existing.member, member.role != role {
                throw APIError(
                    code: "member_conflict",
                    message: "\(request.nodeName) is the name of \(member.role == .server ? "a server" : "a client") of this cluster (member \(member.id), \(member.name)); "
                        + "join under a name of your own (--node-name)")
            }
            // The same name from another address while the member is up is a second host (a
            // cloned machine, a reused hostname), not that member with its state lost: taken
            // over, the two would share one id and keep closing each other's connections.
            // Consul refuses such a join too, until the old node has failed.
            if let member = existing.member, existing.up, member.address != request.advertiseAddress {
                let (what, way) =
                    existing.unregistered
                    ? ("whose node has not registered yet", "if it never will, remove it (deployctl cluster remove-peer \(member.id))")
                    : ("that is up", "stop that one: once it is marked down its name can be taken")
                throw APIError(
                    code: "member_conflict",
                    message: "\(member.name) is a member of this cluster at \(member.address) \(what); a second agent under its name from \(request.advertiseAddress) "
                        + "would take it over. Join under a name of your own (--node-name), or \(way)")
            }
            id = existing.member?.id ?? existing.nextID
            // What was read under the id: a second join under the name racing this one read it
            // too, and the log takes only the first of them.
            let (result, _) = try await gateway.submit(
                .addMember(
                    id: id, name: request.nodeName, address: request.advertiseAddress, role: role,
                    expecting: existing.member.map { .at($0.address) } ?? .absent))
            guard let error = result.error else { break }
            guard case .memberConflict = error else { throw error }
            // Joins under other names at once took the id picked (each round's losers pick the
            // same next one): past a few rounds, "not now", which the joiner asks again after.
            attempt += 1
            if attempt == 8 {
                throw APIError(code: APIErrorCode.overloaded, message: "many agents are joining at once and took the ids this join picked; ask again")
            }
        }
        // Through the leader, wherever the join arrived: a follower cannot change the
        // configuration, and answering "refused" would end the join for good.
        if role == .server { try await gateway.addLearner(id) }
        let servers = try await gateway.read { $0.servers }
        return (id, servers.compactMap(peer))
    }

    /// Runs while the agent runs: the member list drives the transport's peers; the
    /// bootstrap server records itself once it leads; the leader promotes learners.
    func run(gateway: ClusterGateway) async {
        var seen: UInt64 = 0
        var peered: [UInt64: MemberRecord]?
        var refused: Set<UInt64> = []
        var nextFetch = ContinuousClock.now
        while !Task.isCancelled {
            let (members, replicatedToken, removed) = (try? await gateway.read { ($0.members, $0.joinToken, $0.removedMemberIDs) }) ?? ([:], nil, [])
            // Until the first leader of a formation has recorded its servers (then the token),
            // they are known from the formation alone.
            let formed = replicatedToken == nil ? formationMembers(missingFrom: members) : [:]
            let known = members.merging(formed) { recorded, _ in recorded }
            if known != peered || removed != refused {
                transport.setMemberDirectory(names: known.mapValues(\.name), removed: removed)
                refused = removed
            }
            if known != peered {
                transport.setPeers(known.values.filter { $0.role == .server }.compactMap(Self.peer))
                peered = known
            }
            let raft = await gateway.node.status
            if raft.softState.role == .leader, !formed.isEmpty {
                do {
                    for member in formed.values.sorted(by: { $0.id < $1.id }) {
                        _ = try await gateway.submit(.addMember(id: member.id, name: member.name, address: member.address))
                    }
                } catch {
                    logger.info("recording the formed servers as members: not yet", metadata: ["reason": "\(error)"])
                }
                seen = await gateway.feed.pace(after: seen, timeout: .milliseconds(250))
                continue
            }
            await keepAuthorityCurrent(
                members: members, replicatedToken: replicatedToken, leads: raft.softState.role == .leader, gateway: gateway, nextFetch: &nextFetch)
            if raft.softState.role == .leader {
                if members[identity.nodeID]?.address != settings.advertiseAddress {
                    _ = try? await gateway.submit(.addMember(id: identity.nodeID, name: nodeName, address: settings.advertiseAddress))
                }
                if let learner = VoterPromotion.learnerToPromote(raft) {
                    do {
                        _ = try await gateway.node.proposeConfChange(ConfChange(.addVoter, learner))
                        logger.notice("promoted a server to voter", metadata: ["id": "\(learner)"])
                    } catch {
                        logger.debug("promotion deferred", metadata: ["id": "\(learner)", "reason": "\(error)"])
                    }
                }
            }
            seen = await gateway.feed.pace(after: seen, timeout: .milliseconds(250))
        }
    }

    /// The servers of this server's formation that the member list does not hold yet.
    private func formationMembers(missingFrom members: [UInt64: MemberRecord]) -> [UInt64: MemberRecord] {
        var missing: [UInt64: MemberRecord] = [:]
        for server in identity.formation ?? [] where members[server.id] == nil {
            missing[server.id] = MemberRecord(id: server.id, name: server.name, address: server.address, addedIndex: 0)
        }
        return missing
    }

    static func peer(_ member: MemberRecord) -> ClusterPeer? {
        HostPort(member.address).map { ClusterPeer(id: member.id, name: member.name, host: $0.host, port: $0.port) }
    }
}

/// Shows and replaces the cluster's join token.
protocol JoinTokenKeeper: Sendable {
    func current() async throws(APIError) -> JoinToken
    func rotate() async throws(APIError) -> JoinToken
}

/// The join token as the replicated state holds it, shown and rotated on any server that
/// holds the CA (a new token carries the CA's pin).
final class ReplicatedJoinToken: JoinTokenKeeper {
    private let authority: ServerJoinAuthority
    private let directory: String
    private let identity: Mutex<ClusterIdentity>
    private let gateway: Deferred<ClusterGateway>

    init(authority: ServerJoinAuthority, identity: ClusterIdentity, directory: String, gateway: Deferred<ClusterGateway>) {
        self.authority = authority
        self.identity = Mutex(identity)
        self.directory = directory
        self.gateway = gateway
    }

    func current() async throws(APIError) -> JoinToken {
        guard let token = authority.token else { throw APIError(code: APIErrorCode.notFound, message: ServerJoinAuthority.notYet) }
        return token
    }

    /// Saved here first, then committed: every server takes it from the log, and the old one
    /// stops admitting on each as it applies the entry.
    func rotate() async throws(APIError) -> JoinToken {
        guard let ca = authority.ca, let gateway = gateway.value else {
            throw APIError(code: APIErrorCode.notFound, message: ServerJoinAuthority.notYet)
        }
        let token = JoinToken.generate(caPin: ca.pin)
        do {
            try identity.withLock { identity throws(ClusterSecurityError) in try identity.takeToken(token, in: directory) }
        } catch {
            throw APIError(code: APIErrorCode.internalError, message: "could not save the new join token: \(error)")
        }
        _ = try await gateway.submit(.setJoinToken(token.encoded))
        authority.replaceToken(token)
        return token
    }
}

/// A value set once after construction, for the parts made before what they point to.
final class Deferred<Value: Sendable>: Sendable {
    private let storage = Mutex<Value?>(nil)
    var value: Value? { storage.withLock { $0 } }
    func set(_ value: Value) { storage.withLock { $0 = value } }
}

/// Delivers to the node once it is attached; before, messages are dropped (Raft resends).
/// Only the node's Raft members speak Raft: a client's certificate is the cluster's too, and
/// the id in a hello is the sender's word, checked against the name only for listed servers,
/// so a client could otherwise send Raft under an id of its choosing (etcd's transport drops
/// what comes from a non-member likewise). A node that holds no configuration yet (a server
/// that has just joined) takes everything: the leader's messages bring it one.
struct ForwardingReceiver: RaftMessageReceiver {
    let target: Deferred<any RaftMessageReceiver>
    let raftMembers: Deferred<@Sendable () -> Set<NodeID>>

    func receive(_ messages: [Message]) {
        let members = raftMembers.value?() ?? []
        target.value?.receive(members.isEmpty ? messages : messages.filter { members.contains($0.from) })
    }
}

/// Answers forwarded writes once the node is attached.
struct DeferredCallHandler: CallHandler {
    let gateway: Deferred<ClusterGateway>
    let api: ForwardedAPIResponder
    let authority: ServerJoinAuthority?
    let logs: Deferred<any InstanceLogSource>
    let streams: StreamSessions
    func answer(_ payload: [UInt8], from caller: NodeID) async throws -> [UInt8] {
        if payload.first == InstanceLogCall.kind { return try await InstanceLogCall.answer(payload, local: logs) }
        if StreamCall.isStreamKind(payload) {
            return try await StreamCall.answer(payload, from: caller, sessions: streams) { [api, logs] purpose, body in
                switch purpose {
                case .api:
                    let (head, produce) = try await api.openStream(JSONDecoder().decode(ForwardedHTTPRequest.self, from: Data(body)))
                    return (Array(try JSONEncoder().encode(head)), produce)
                case .instanceLog:
                    return ([], try await InstanceLogCall.produceFollowing(body, local: logs))
                }
            }
        }
        guard let gateway = gateway.value else { throw AgentError.configuration("the agent is still starting") }
        if payload == [CertificateAuthorityRequest.kind] {
            return try await CertificateAuthorityRequest.answer(authority: authority, caller: caller, gateway: gateway)
        }
        return try await LeaderRequests(gateway: gateway, api: api).answer(payload, from: caller)
    }
}

/// What a client answers over the connections it keeps to the servers: the output of its own
/// instances. It takes no other call.
struct ClientCallHandler: CallHandler {
    let logs: Deferred<any InstanceLogSource>
    let streams: StreamSessions

    func answer(_ payload: [UInt8], from caller: NodeID) async throws -> [UInt8] {
        if payload.first == InstanceLogCall.kind { return try await InstanceLogCall.answer(payload, local: logs) }
        guard StreamCall.isStreamKind(payload) else { throw AgentError.configuration("a client agent answers only requests for its instances' output") }
        return try await StreamCall.answer(payload, from: caller, sessions: streams) { [logs] purpose, body in
            guard purpose == .instanceLog else { throw AgentError.configuration("a client agent streams only its instances' output") }
            return ([], try await InstanceLogCall.produceFollowing(body, local: logs))
        }
    }
}
