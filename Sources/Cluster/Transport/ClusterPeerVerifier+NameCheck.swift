import Foundation

extension ClusterPeerVerifier {
    /// The transport's name check: after the handshake has verified the chain, the full node
    /// certificate checks (usages, validity, not the CA itself) and that it names `nodeName`,
    /// at the time of the connection.
    public var peerNameCheck: PeerNameCheck {
        { certificateDER, nodeName in
            switch verify(peerCertificateDER: certificateDER, expectedNodeName: nodeName, now: Date()) {
            case .success: nil
            case .failure(let rejection): "\(rejection)"
            }
        }
    }
}
