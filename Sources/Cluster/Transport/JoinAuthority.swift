import Foundation
import Raft
import Synchronization

/// Decides, on a server, whether an agent may join, and if so gives it an id and a certificate.
public protocol JoinAuthority: Sendable {
    /// The answer to `request`, which arrived from `remoteAddress`. Runs off the event loop.
    func admit(_ request: JoinRequest, from remoteAddress: String) async -> JoinResponse

    /// The answer to a member's renewal: `presented` is its current certificate, verified
    /// against the CA (valid now). Runs off the event loop.
    func renew(_ request: RenewRequest, presented: VerifiedPeer, from remoteAddress: String) async -> JoinResponse
}

/// The authority of an agent that holds the cluster CA: the request must carry the current
/// join token; the certificate names the node, for the request's key, signed now for
/// `certificateLifetime`. `assignNodeID` records the new member (through Raft, in the agent)
/// and answers its id and the servers; its error refuses the join with the error as the reason.
public final class TokenJoinAuthority: JoinAuthority {
    public typealias AssignNodeID = @Sendable (_ request: JoinRequest) async throws -> (id: NodeID, servers: [ClusterPeer])

    private let ca: ClusterCA
    private let currentToken: Mutex<JoinToken>
    private let certificateLifetime: Duration
    private let assignNodeID: AssignNodeID

    public init(
        ca: ClusterCA, token: JoinToken, certificateLifetime: Duration = ClusterCA.defaultNodeCertificateLifetime,
        assignNodeID: @escaping AssignNodeID
    ) {
        self.ca = ca
        currentToken = Mutex(token)
        self.certificateLifetime = certificateLifetime
        self.assignNodeID = assignNodeID
    }

    /// The token joins must carry now.
    public var token: JoinToken { currentToken.withLock { $0 } }

    /// Takes `token` (made and saved by the caller) as the only one; the old one stops working.
    public func replaceToken(_ token: JoinToken) {
        currentToken.withLock { $0 = token }
    }

    public func admit(_ request: JoinRequest, from remoteAddress: String) async -> JoinResponse {
        guard token.authenticates(id: request.tokenID, secret: request.tokenSecret) else {
            return .refused(reason: "the join token is not this cluster's current one (wrong, or rotated): get it with `deployctl cluster token` on a server")
        }
        let certificate: [UInt8]
        do {
            certificate = try issue(request.certificateRequestDER, nodeName: request.nodeName, advertiseAddress: request.advertiseAddress)
        } catch {
            return .refused(reason: "\(error)")
        }
        do {
            let (id, servers) = try await assignNodeID(request)
            return .admitted(nodeID: id, certificateDER: certificate, servers: servers)
        } catch let busy as JoinUnavailable {
            return .unavailable(reason: busy.reason)
        } catch {
            return .refused(reason: "\(error)")
        }
    }

    /// A renewal keeps the name the current certificate carries: the request must be for it.
    public func renew(_ request: RenewRequest, presented: VerifiedPeer, from remoteAddress: String) async -> JoinResponse {
        do {
            let certificate = try issue(
                request.certificateRequestDER, nodeName: presented.nodeName, advertiseAddress: request.advertiseAddress)
            return .admitted(nodeID: request.nodeID, certificateDER: certificate)
        } catch {
            return .refused(reason: "\(error)")
        }
    }

    private func issue(_ requestDER: [UInt8], nodeName: String, advertiseAddress: String) throws(ClusterSecurityError) -> [UInt8] {
        try PEMFiles.der(
            ca.issueNodeCertificate(
                requestDER: requestDER, nodeName: nodeName, ipAddresses: HostPort(advertiseAddress)?.ipAddress.map { [$0] } ?? [],
                now: Date(), lifetime: certificateLifetime))
    }
}

/// What `AssignNodeID` throws when the cluster cannot record a member now (no leader, the
/// agent still starting): the join is answered "unavailable", and the joiner asks again.
public struct JoinUnavailable: Error, CustomStringConvertible {
    public var reason: String
    public init(reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// The authority of an agent that does not hold the CA: every join and renewal is refused with
/// where to go instead.
struct NoCertificateAuthority: JoinAuthority {
    static let reason =
        "this agent does not admit joins: join through a server of the cluster"

    func admit(_ request: JoinRequest, from remoteAddress: String) async -> JoinResponse { .refused(reason: Self.reason) }

    func renew(_ request: RenewRequest, presented: VerifiedPeer, from remoteAddress: String) async -> JoinResponse {
        .refused(reason: Self.reason)
    }
}

/// Answers the servers a cluster is being formed with (`--bootstrap-expect`), on a server that
/// takes part: while forming, and once formed, with the formation (for one that asks late).
public protocol FormationResponder: Sendable {
    /// The answer to `request` from the server whose verified certificate names `asker`. Runs
    /// off the event loop.
    func answer(_ request: FormationRequest, from asker: String) async -> FormationResponse
}
