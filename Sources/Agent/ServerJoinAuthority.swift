import AgentAPI
import Cluster
import Controller
import Logging
import Raft
import Synchronization

/// The join and renewal authority of a server. Every server holds the cluster CA, so that the
/// cluster still admits agents and renews their certificates after losing any server, the
/// bootstrap one included (issue 13: "survive losing one"): the bootstrap server makes the CA;
/// every other server receives it from one that has it once it is a member
/// (``ClusterMembership/keepAuthorityCurrent``), over their mutual-TLS connection. Until
/// then this one refuses, saying so.
final class ServerJoinAuthority: JoinAuthority {
    private struct Held {
        var authority: TokenJoinAuthority
        var ca: ClusterCA
    }

    /// Whether member `id` is in the member list under `name`; throws `JoinUnavailable` when
    /// that cannot be told now.
    typealias IsMember = @Sendable (_ id: NodeID, _ name: String) async throws -> Bool

    private let held = Mutex<Held?>(nil)
    private let certificateLifetime: Duration
    private let assignNodeID: TokenJoinAuthority.AssignNodeID
    private let isMember: IsMember

    init(
        ca: ClusterCA?, token: JoinToken?, certificateLifetime: Duration, isMember: @escaping IsMember,
        assignNodeID: @escaping TokenJoinAuthority.AssignNodeID
    ) {
        self.certificateLifetime = certificateLifetime
        self.assignNodeID = assignNodeID
        self.isMember = isMember
        if let ca, let token { hold(ca, token: token) }
    }

    /// The CA, once this server holds it.
    var ca: ClusterCA? { held.withLock { $0?.ca } }

    /// The token joins must carry now, once this server holds the CA.
    var token: JoinToken? { held.withLock { $0?.authority.token } }

    func hold(_ ca: ClusterCA, token: JoinToken) {
        let authority = TokenJoinAuthority(ca: ca, token: token, certificateLifetime: certificateLifetime, assignNodeID: assignNodeID)
        held.withLock { $0 = Held(authority: authority, ca: ca) }
    }

    func replaceToken(_ token: JoinToken) {
        held.withLock { $0?.authority.replaceToken(token) }
    }

    static let notYet = "this server has not received the cluster CA yet (servers get it from one another once they are members): try again in a moment, or join through another server"

    func admit(_ request: JoinRequest, from remoteAddress: String) async -> JoinResponse {
        guard let authority = held.withLock({ $0?.authority }) else { return .unavailable(reason: Self.notYet) }
        return await authority.admit(request, from: remoteAddress)
    }

    /// Renews only for a member still in the list: a node removed from the cluster loses access
    /// when its certificate ends, instead of renewing for ever.
    func renew(_ request: RenewRequest, presented: VerifiedPeer, from remoteAddress: String) async -> JoinResponse {
        guard let authority = held.withLock({ $0?.authority }) else { return .unavailable(reason: Self.notYet) }
        do {
            guard try await isMember(request.nodeID, presented.nodeName) else {
                return .refused(
                    reason: "node \(presented.nodeName) (id \(request.nodeID)) is not a member of this cluster (removed?), so its certificate is not renewed; join again with the cluster's token")
            }
        } catch let busy as JoinUnavailable {
            return .unavailable(reason: busy.reason)
        } catch {
            return .unavailable(reason: "\(error)")
        }
        return await authority.renew(request, presented: presented, from: remoteAddress)
    }
}

/// A server's call to another server asking for the cluster CA: one byte, this kind. Answered
/// to server members only (a client's certificate is the cluster's too, but a client signs
/// nothing), with ``ClusterCA/sharedBundle()``.
enum CertificateAuthorityRequest {
    static let kind: UInt8 = 20

    static func answer(authority: ServerJoinAuthority?, caller: NodeID, gateway: ClusterGateway) async throws -> [UInt8] {
        guard try await gateway.read({ $0.members[caller]?.role }) == .server else {
            throw APIError(code: APIErrorCode.unauthorized, message: "member \(caller) is not a server of this cluster; only servers receive the CA")
        }
        guard let ca = authority?.ca else {
            throw APIError(code: APIErrorCode.notFound, message: ServerJoinAuthority.notYet)
        }
        return try ca.sharedBundle()
    }
}

extension ClusterMembership {
    /// One step of the membership loop on a server: the bootstrap server, once it leads,
    /// records its join token in the log; every server follows the token the log holds (a
    /// rotation on any server reaches all); a server without the CA asks the servers it is
    /// connected to for it, at most every 2 s, and from then on admits and renews too.
    func keepAuthorityCurrent(
        members: [UInt64: MemberRecord], replicatedToken: String?, leads: Bool, gateway: ClusterGateway,
        nextFetch: inout ContinuousClock.Instant
    ) async {
        guard let authority = joinAuthority else { return }
        guard let replicatedToken else {
            if leads, let token = authority.token { _ = try? await gateway.submit(.setJoinToken(token.encoded)) }
            return
        }
        guard let token = try? JoinToken(parsing: replicatedToken) else {
            logger.error("the join token in the replicated state does not parse; rotate it with `deployctl cluster token --rotate`")
            return
        }
        if let held = authority.token, held.encoded != token.encoded {
            authority.replaceToken(token)
            var saved = identity
            do {
                try saved.takeToken(token, in: directory)
            } catch {
                logger.warning("could not save the rotated join token", metadata: ["error": "\(error)"])
            }
        }
        guard authority.ca == nil, ContinuousClock.now >= nextFetch else { return }
        nextFetch = ContinuousClock.now + .seconds(2)
        let expected = credentials.withLock { $0.caCertificate }
        for server in members.values.sorted(by: { $0.id < $1.id })
        where server.role == .server && server.id != identity.nodeID && transport.isConnected(to: server.id) {
            do {
                let bundle = try await transport.call(server.id, payload: [CertificateAuthorityRequest.kind], timeout: .seconds(5))
                let ca = try ClusterCA.receive(bundle, expected: expected)
                var saved = identity
                try saved.adopt(ca, token: token, in: directory)
                authority.hold(ca, token: token)
                logger.notice("received the cluster CA; this server now admits joins and renews certificates", metadata: ["from": "\(server.name)"])
                return
            } catch {
                logger.debug("no cluster CA from this server yet", metadata: ["server": "\(server.name)", "error": "\(error)"])
            }
        }
    }
}
