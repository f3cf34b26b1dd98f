import AcceptPause
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Raft
import Synchronization

/// Raft between agents over TCP with mutual TLS (DESIGN.md §10): one listening port per agent,
/// one connection per pair of agents (the one with the lower id dials, and both talk over it),
/// frames of batched messages, a bounded queue per peer, and reconnection with backoff and
/// jitter.
public final class ClusterTransport: RaftTransport, Sendable {
    /// Counters across every peer, for tests and metrics.
    public struct Statistics: Sendable, Hashable {
        public var messagesSent = 0
        public var messagesDropped = 0
        public var messagesReceived = 0
        public var messagesMisaddressed = 0
        public var connectionsRefused = 0
        /// Accepted connections open now that have not identified themselves yet.
        public var unidentifiedConnections = 0
    }

    let core: TransportCore
    private let group: any EventLoopGroup
    private let listener = Mutex<(any Channel)?>(nil)
    /// Set by `shutdown`: no more dialing.
    private let stopped = Mutex(false)

    /// A transport for the node `configuration.localID`, delivering what it receives to
    /// `receiver`. Nothing happens until `start`.
    public init(
        configuration: TransportConfiguration, receiver: any RaftMessageReceiver, joinAuthority: (any JoinAuthority)? = nil,
        callHandler: (any CallHandler)? = nil, formationResponder: (any FormationResponder)? = nil,
        group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, logger: Logger = Logger(label: "cluster-transport")
    ) throws {
        core = TransportCore(
            configuration: configuration, receiver: receiver, joinAuthority: joinAuthority, callHandler: callHandler,
            formationResponder: formationResponder,
            serverTLS: try configuration.tls.context(server: true), clientTLS: try configuration.tls.context(server: false),
            logger: logger)
        self.group = group
    }

    /// Listens on the configured address; returns the port it listens on.
    @discardableResult
    public func start() async throws -> Int {
        let core = self.core
        var bootstrap = ServerBootstrap(group: group).serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .pausingAcceptOnResourceErrors()
        for (option, value) in Self.connectionOptions(unacknowledgedTimeout: core.configuration.unacknowledgedTimeout) { bootstrap = bootstrap.childChannelOption(option, value: value) }
        let channel = try await bootstrap
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try core.installHandlers(on: channel, role: .acceptor)
                }
            }
            .bind(host: core.configuration.listenHost, port: core.configuration.listenPort).get()
        listener.withLock { $0 = channel }
        return channel.localAddress?.port ?? core.configuration.listenPort
    }

    /// The members to talk to, replacing the previous set: links to new peers are made (and
    /// dialed, by the side with the lower id), links to removed ones closed. A connection from
    /// a member not listed yet (one that joined after this node's copy of the member list) is
    /// taken all the same when its certificate is the cluster's; see `TransportCore.inboundLink`.
    public func setPeers(_ peers: [ClusterPeer]) {
        let (toDial, removed) = core.setPeers(peers.filter { $0.id != core.localID })
        for link in removed { link.close() }
        for link in toDial { dial(link, after: core.configuration.reconnectInitial) }
    }

    /// The members' names by id, and the ids of members removed from the cluster. A hello must
    /// give a member's id with its name (certificates name the node, not its id: without this
    /// a member could say another's id while that one is not connected). A removed member's
    /// connections are closed now and refused from now on (Raft messages and calls alike),
    /// though its certificate stays valid up to a day.
    public func setMemberDirectory(names: [NodeID: String], removed: Set<NodeID>) {
        for link in core.setMemberDirectory(names: names, removed: removed) { link.close() }
    }

    public func send(_ messages: [Message]) {
        var byPeer: [NodeID: [[UInt8]]] = [:]
        for message in messages { byPeer[message.to, default: []].append(message.encoded()) }
        for (peer, encoded) in byPeer {
            guard let link = core.link(for: peer) else {
                core.countDropped(encoded.count)
                continue
            }
            link.enqueue(encoded)
        }
    }

    /// Counters so far.
    public var statistics: Statistics { core.statistics }

    /// Renewed credentials: every connection made from now on presents them. Connections up
    /// now keep going (TLS checks certificates at the handshake only); they are replaced in
    /// their course, and the old certificate stays valid until then (renewal happens at two
    /// thirds of its life).
    public func replaceCredentials(_ tls: ClusterTLSMaterial) throws {
        try core.replaceCredentials(tls)
    }

    /// Sends `payload` to member `peer` over the connection up now and returns its answer (its
    /// `CallHandler`'s). Not queued: with no connection it fails at once.
    public func call(_ peer: NodeID, payload: [UInt8], timeout: Duration = .seconds(10)) async throws(CallError) -> [UInt8] {
        guard let channel = core.link(for: peer)?.channel else { throw .noConnection(peer) }
        return try await core.calls.call(payload, to: peer, on: channel, timeout: timeout)
    }

    /// TCP_USER_TIMEOUT (RFC 5482): the kernel ends a connection whose sent data stays
    /// unacknowledged this long. Without it a peer cut off (a pulled cable, a partition) leaves
    /// a connection that looks up for many minutes of retransmissions, and calls and Raft
    /// messages go into it; with it the connection ends, and dialing starts again, so the link
    /// comes back soon after the network does.
    static let unacknowledgedTimeout = ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: CInt(TCP_USER_TIMEOUT)))

    /// TCP keepalive after this long idle, a probe a second, three unanswered end it: the
    /// unacknowledged-data timeout above never fires on a connection nothing is sent on (a
    /// client's connection to a server it does not heartbeat, one with a watch waiting), and a
    /// cut there would leave it looking up until it was next used.
    static let keepaliveIdle = ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPIDLE)))
    static let keepaliveInterval = ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPINTVL)))
    static let keepaliveCount = ChannelOptions.Types.SocketOption(level: .tcp, name: NIOBSDSocket.Option(rawValue: CInt(TCP_KEEPCNT)))

    /// The options of every connection between agents, accepted or dialled alike.
    /// TCP_NODELAY is a TCP-level option: `.socketOption(.tcp_nodelay)` would set option 1 of
    /// SOL_SOCKET, which is SO_DEBUG.
    static func connectionOptions(unacknowledgedTimeout timeout: Duration) -> [(ChannelOptions.Types.SocketOption, SocketOptionValue)] {
        [
            (.tcpOption(.tcp_nodelay), 1),
            (unacknowledgedTimeout, milliseconds(timeout)),
            (.socketOption(.so_keepalive), 1),
            (keepaliveIdle, seconds(timeout)),
            (keepaliveInterval, 1),
            (keepaliveCount, 3),
        ]
    }

    static func seconds(_ duration: Duration) -> SocketOptionValue {
        SocketOptionValue(max(1, duration.components.seconds))
    }

    static func milliseconds(_ duration: Duration) -> SocketOptionValue {
        SocketOptionValue(min(Double(Int32.max), max(1, duration / .milliseconds(1))))
    }

    /// Whether a connection to `peer` is up.
    public func isConnected(to peer: NodeID) -> Bool { core.link(for: peer)?.isConnected ?? false }

    /// Stops listening, dialing and talking.
    public func shutdown() async {
        stopped.withLock { $0 = true }
        core.calls.failAll()
        core.closeAll()
        let channel = listener.withLock { channel in defer { channel = nil }; return channel }
        try? await channel?.close()
    }

    /// Keeps a connection to the peer of `link` while the link lives: connect, wait for it to
    /// close, wait a backoff (doubling, with jitter, reset by a connection that got attached and lasted),
    /// and again. Driven by the event loop's futures and timers rather than a task, so that a
    /// busy cooperative pool cannot hold reconnection back.
    private func dial(_ link: PeerLink, after delay: Duration) {
        guard !link.isClosed, !stopped.withLock({ $0 }) else { return }
        let peer = link.peer
        let attachedBefore = link.statistics.connectionsAttached
        let loop = group.next()
        let configuration = core.configuration
        var bootstrap = ClientBootstrap(group: loop)
        for (option, value) in Self.connectionOptions(unacknowledgedTimeout: configuration.unacknowledgedTimeout) { bootstrap = bootstrap.channelOption(option, value: value) }
        bootstrap
            .connectTimeout(TimeAmount(configuration.connectTimeout))
            .channelInitializer { [core] channel in
                channel.eventLoop.makeCompletedFuture {
                    try core.installHandlers(on: channel, role: .dialer(peer))
                }
            }
            .connect(host: peer.host, port: peer.port)
            .flatMap { channel in
                let connected = ContinuousClock.now
                return channel.closeFuture.map { connected }
            }
            .whenComplete { [core] result in
                var lasted = Duration.zero
                switch result {
                case .success(let connected): lasted = .now - connected
                case .failure(let error):
                    core.logger.debug(
                        "cannot reach peer", metadata: ["peer": "\(peer.id)", "address": "\(peer.host):\(peer.port)", "error": "\(error)"])
                }
                // Back to the shortest wait only after a connection that was attached and lasted
                // the longest wait: one closed right after its handshake (the peer refused the
                // hello, as it does a removed member's) backs off further, instead of redialing
                // every few tens of milliseconds for as long as the certificate lasts.
                let worked = link.statistics.connectionsAttached > attachedBefore && lasted >= configuration.reconnectMaximum
                let base = worked ? configuration.reconnectInitial : delay
                let jittered = base * Double.random(in: 0.5...1.5)
                let next = min(base * 2, configuration.reconnectMaximum)
                loop.scheduleTask(in: TimeAmount(jittered)) { self.dial(link, after: next) }
            }
    }
}

extension TimeAmount {
    /// `duration` at nanosecond precision.
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        self = .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}

/// What an acceptor does with a connection after its hello.
enum InboundLink {
    case taken(PeerLink)
    case refused(String)
    /// A removed member, which redials until its certificate ends (up to a day).
    case removed(NodeID, String)
}

/// The state every connection handler of one transport shares.
final class TransportCore: Sendable {
    let configuration: TransportConfiguration
    let receiver: any RaftMessageReceiver
    let joinAuthority: (any JoinAuthority)?
    let callHandler: (any CallHandler)?
    let formationResponder: (any FormationResponder)?
    let calls = PendingCalls()
    /// The TLS contexts new connections use; replaced when the node's certificate is renewed.
    private let contexts: Mutex<(server: NIOSSLContext, client: NIOSSLContext)>
    let logger: Logger
    private let links = Mutex<[NodeID: PeerLink]>([:])
    /// Members' names by id and the ids of removed members (`setMemberDirectory`); read under
    /// `links`' lock.
    private let directory = Mutex<(names: [NodeID: String], removed: Set<NodeID>)>(([:], []))
    /// The removed members whose refusal was logged as a warning: the later ones are logged at
    /// debug level, since a removed member redials every few seconds for as long as its
    /// certificate lasts.
    private let removedRefusalsLogged = Mutex<Set<NodeID>>([])
    private let counters = Mutex(ClusterTransport.Statistics())
    /// Accepted connections that have not identified themselves yet (`admitUnidentified`).
    private let unidentified = Mutex(0)
    /// Refusals at that cap since the last line about them, and when that was (`strangerRefusedAtCap`).
    private let capRefusals = Mutex<(count: Int, lastLogged: ContinuousClock.Instant?)>((0, nil))

    init(
        configuration: TransportConfiguration, receiver: any RaftMessageReceiver, joinAuthority: (any JoinAuthority)?,
        callHandler: (any CallHandler)?, formationResponder: (any FormationResponder)?, serverTLS: NIOSSLContext, clientTLS: NIOSSLContext,
        logger: Logger
    ) {
        self.configuration = configuration
        self.receiver = receiver
        self.joinAuthority = joinAuthority
        self.callHandler = callHandler
        self.formationResponder = formationResponder
        contexts = Mutex((serverTLS, clientTLS))
        self.logger = logger
    }

    var localID: NodeID { configuration.localID }
    var localName: String { configuration.localName }

    /// TLS, then frames, then the peer logic, on a new connection (on its event loop).
    func installHandlers(on channel: any Channel, role: PeerChannelHandler.Role) throws {
        let tls: NIOSSLHandler
        let limit: FrameSizeLimit
        switch role {
        case .acceptor:
            tls = NIOSSLServerHandler(context: contexts.withLock { $0.server })
            limit = FrameSizeLimit(configuration.maximumUnidentifiedFramePayloadBytes)
        case .dialer:
            // The server dialed is identified by its certificate in the handshake, before any frame.
            tls = try NIOSSLClientHandler(context: contexts.withLock { $0.client }, serverHostname: nil)
            limit = FrameSizeLimit(configuration.maximumFramePayloadBytes)
        }
        try channel.pipeline.syncOperations.addHandlers([
            tls,
            ByteToMessageHandler(FrameDecoder(limit: limit)),
            MessageToByteHandler(FrameEncoder()),
            PeerChannelHandler(role: role, core: self, frameLimit: limit),
        ])
    }

    func replaceCredentials(_ tls: ClusterTLSMaterial) throws {
        let fresh = (server: try tls.context(server: true), client: try tls.context(server: false))
        contexts.withLock { $0 = fresh }
    }

    func link(for peer: NodeID) -> PeerLink? { links.withLock { $0[peer] } }

    /// Replaces the peer set; returns the links to start dialing (new ones this side dials)
    /// and the links to close. Links made for an inbound connection stay while it lasts.
    func setPeers(_ peers: [ClusterPeer]) -> (toDial: [PeerLink], removed: [PeerLink]) {
        links.withLock { links in
            var toDial: [PeerLink] = []
            var keep: Set<NodeID> = []
            for peer in peers {
                keep.insert(peer.id)
                let link = links[peer.id] ?? PeerLink(peer: peer, configuration: configuration)
                links[peer.id] = link
                link.peer = peer
                if link.markListed(dialed: configuration.dialsEveryPeer || localID < peer.id) { toDial.append(link) }
            }
            let removed = links.values.filter { !keep.contains($0.peer.id) && $0.isListed }
            for link in removed { links.removeValue(forKey: link.peer.id) }
            return (toDial, removed)
        }
    }

    /// Replaces the member directory; returns the removed members' links, taken out, to close.
    func setMemberDirectory(names: [NodeID: String], removed: Set<NodeID>) -> [PeerLink] {
        removedRefusalsLogged.withLock { $0.formIntersection(removed) }
        return links.withLock { links in
            directory.withLock { $0 = (names, removed) }
            return removed.compactMap { links.removeValue(forKey: $0) }
        }
    }

    /// The link for a connection whose certificate verified and whose hello says `hello`: the
    /// listed peer's, when the name matches; else, for a member this node does not list yet, a
    /// link of its own that lasts as long as the connection (a server that joined after this
    /// node's copy of the member list was written still reaches it, and the log it sends
    /// brings that list). A name that a listed member with another id holds is refused, and so
    /// are an id the directory gives another name and a removed member.
    func inboundLink(for hello: Hello, from address: SocketAddress?) -> InboundLink {
        links.withLock { links in
            let (names, removed) = directory.withLock { $0 }
            if removed.contains(hello.nodeID) {
                return .removed(hello.nodeID, "hello from node \(hello.nodeID) (\(hello.nodeName)), which was removed from this cluster; to come back it joins again with the cluster's token, under a new id")
            }
            if let name = names[hello.nodeID], !NodeName.same(name, hello.nodeName) {
                return .refused("hello from node \(hello.nodeID) (\(hello.nodeName)), but member \(hello.nodeID) is \(name)")
            }
            if let link = links[hello.nodeID] {
                guard NodeName.same(link.peer.name, hello.nodeName) else {
                    return .refused("hello from node \(hello.nodeID) (\(hello.nodeName)), but node \(hello.nodeID) is \(link.peer.name)")
                }
                return .taken(link)
            }
            if let holder = links.values.first(where: { NodeName.same($0.peer.name, hello.nodeName) }) {
                return .refused("hello from node \(hello.nodeID) (\(hello.nodeName)), but \(hello.nodeName) is node \(holder.peer.id)")
            }
            let peer = ClusterPeer(id: hello.nodeID, name: hello.nodeName, host: address?.ipAddress ?? "", port: address?.port ?? 0)
            let link = PeerLink(peer: peer, configuration: configuration)
            links[hello.nodeID] = link
            return .taken(link)
        }
    }

    /// An inbound link's connection ended: a link nobody listed goes with it.
    func connectionEnded(on link: PeerLink) {
        let unlisted = links.withLock { links -> Bool in
            guard !link.isListed, !link.isConnected, links[link.peer.id] === link else { return false }
            links.removeValue(forKey: link.peer.id)
            return true
        }
        if unlisted { link.close() }
    }

    func deliver(_ messages: [Message], misaddressed: Int) {
        counters.withLock {
            $0.messagesReceived += messages.count
            $0.messagesMisaddressed += misaddressed
        }
        if !messages.isEmpty { receiver.receive(messages) }
    }

    func countDropped(_ count: Int) { counters.withLock { $0.messagesDropped += count } }

    /// Counts an accepted connection that has not identified itself yet; false (and not counted)
    /// when `maximumUnidentifiedConnections` are open already.
    func admitUnidentified() -> Bool {
        unidentified.withLock { count in
            guard count < configuration.maximumUnidentifiedConnections else { return false }
            count += 1
            return true
        }
    }

    /// An accepted connection has identified itself, or ended before it did.
    func unidentifiedEnded() {
        unidentified.withLock { $0 -= 1 }
    }

    func connectionRefused(_ reason: String) {
        counters.withLock { $0.connectionsRefused += 1 }
        logger.warning("closed a cluster connection", metadata: ["reason": "\(reason)"])
    }

    /// A removed member's connection refused: counted; logged as a warning the first time.
    func removedMemberRefused(_ id: NodeID, _ reason: String) {
        counters.withLock { $0.connectionsRefused += 1 }
        let first = removedRefusalsLogged.withLock { $0.insert(id).inserted }
        logger.log(
            level: first ? .warning : .debug, "closed a cluster connection",
            metadata: ["reason": "\(reason)\(first ? " (its next attempts are logged at debug level)" : "")"])
    }

    /// A stranger refused because `maximumUnidentifiedConnections` are open: counted, and
    /// logged at most every 10 s with how many since, since a stranger reconnecting in a loop
    /// would otherwise write a line per attempt.
    func strangerRefusedAtCap() {
        counters.withLock { $0.connectionsRefused += 1 }
        let now = ContinuousClock.now
        let refusedSinceLastLine: Int? = capRefusals.withLock { state in
            state.count += 1
            if let last = state.lastLogged, now - last < .seconds(10) { return nil }
            defer { state = (0, now) }
            return state.count
        }
        guard let refusedSinceLastLine else { return }
        logger.warning(
            "closed a cluster connection",
            metadata: [
                "reason": "\(configuration.maximumUnidentifiedConnections) connections that have not identified themselves are open already; refused \(refusedSinceLastLine) such connection(s) since this was last logged (at most every 10 s)"
            ])
    }

    var statistics: ClusterTransport.Statistics {
        var total = counters.withLock { $0 }
        total.unidentifiedConnections = unidentified.withLock { $0 }
        for link in links.withLock({ Array($0.values) }) {
            let statistics = link.statistics
            total.messagesSent += statistics.messagesSent
            total.messagesDropped += statistics.messagesDropped
        }
        return total
    }

    func closeAll() {
        for link in links.withLock({ links in defer { links.removeAll() }; return Array(links.values) }) { link.close() }
    }
}
