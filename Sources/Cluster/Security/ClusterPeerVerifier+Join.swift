import Foundation
import NIOSSL
import X509

/// The server a joining agent reached, checked against its join token's pin: the cluster CA
/// (now trusted) and the server's own verified certificate.
public struct VerifiedJoinTarget: Sendable, Hashable {
    /// The CA certificate whose key the token pins: the joining agent's trust root from now on.
    public var caCertificate: Certificate
    /// The server's node certificate, verified against that CA.
    public var server: VerifiedPeer
}

extension ClusterPeerVerifier {
    /// What a joining agent checks before it sends its token's secret (kubeadm's discovery with
    /// `--discovery-token-ca-cert-hash`): the server's chain (leaf first, as TLS sends it) must
    /// hold a CA certificate whose public key has the pinned hash, and the leaf must be a valid
    /// node certificate of that CA. The TLS handshake has already proved the server holds the
    /// leaf's key, so a man in the middle without a node key of this cluster fails here.
    public static func verifyJoinTarget(
        presentedChainDER: [[UInt8]], pin: ClusterCAPin, now: Date
    ) -> Result<VerifiedJoinTarget, PeerCertificateRejection> {
        guard let leafDER = presentedChainDER.first else { return .failure(.noCertificate) }
        var presentedPins: [ClusterCAPin] = []
        for der in presentedChainDER.dropFirst() {
            guard let candidate = try? Certificate(derEncoded: der), let candidatePin = try? ClusterCAPin(certificate: candidate)
            else { continue }
            presentedPins.append(candidatePin)
            // The pin names a key; only a CA certificate with that key is the cluster CA.
            guard candidatePin == pin, candidate.isCertificateAuthority else { continue }
            let verifier = ClusterPeerVerifier(caCertificate: candidate)
            return verifier.verify(peerCertificateDER: leafDER, expectedNodeName: nil, now: now).map {
                VerifiedJoinTarget(caCertificate: candidate, server: $0)
            }
        }
        return .failure(.caPinMismatch(pinned: pin, presented: presentedPins))
    }

    /// ``verifyJoinTarget(presentedChainDER:pin:now:)`` for the chain swift-nio-ssl hands a
    /// custom verification callback.
    public static func verifyJoinTarget(
        presentedChain: [NIOSSLCertificate], pin: ClusterCAPin, now: Date
    ) -> Result<VerifiedJoinTarget, PeerCertificateRejection> {
        do {
            return verifyJoinTarget(presentedChainDER: try presentedChain.map { try $0.toDERBytes() }, pin: pin, now: now)
        } catch {
            return .failure(.unreadable(reason: "\(error)"))
        }
    }
}
