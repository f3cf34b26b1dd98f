import Crypto
import Foundation
import X509

/// What a node presents on every cluster connection: its private key, its certificate from the
/// cluster CA, and the CA certificate (sent along, and the one root it trusts).
public struct NodeCredentials: Sendable {
    /// The node's private key (file mode 0600; never sent anywhere).
    public let privateKey: P256.Signing.PrivateKey
    /// The node's certificate.
    public let certificate: Certificate
    /// The cluster CA certificate: the chain's root and the node's trust root.
    public let caCertificate: Certificate

    /// The file the certificate chain is saved in (node certificate, then CA; mode 0644).
    public static let certificateFileName = "node.pem"
    /// The file the private key is saved in (mode 0600).
    public static let privateKeyFileName = "node-key.pem"

    /// Pairs a key with its certificate and CA, checking that the certificate is for this key
    /// and is signed by that CA.
    public init(privateKey: P256.Signing.PrivateKey, certificate: Certificate, caCertificate: Certificate) throws(ClusterSecurityError) {
        guard certificate.publicKey == Certificate.PublicKey(privateKey.publicKey) else {
            throw .keyDoesNotMatchCertificate(keyPath: Self.privateKeyFileName, certificatePath: Self.certificateFileName)
        }
        guard caCertificate.publicKey.isValidSignature(certificate.signature, for: certificate) else {
            throw .issuedCertificateMismatch(reason: "\(certificate.subject) is not signed by \(caCertificate.subject)")
        }
        self.privateKey = privateKey
        self.certificate = certificate
        self.caCertificate = caCertificate
    }

    /// The node name the certificate carries (its dNSName).
    public var nodeName: String { certificate.holderName }

    /// When to get a new certificate: once two-thirds of the lifetime have passed, leaving a
    /// third (8 hours of a day) for retries while the current one still works — the fraction
    /// kubelet's certificate manager starts from (it jitters between 70 and 90 %). The lifetime
    /// counts from issue, not from the start backdated for clock skew: with a short lifetime the
    /// backdating would otherwise put the renewal before the issue, and renew without end.
    public var renewalDate: Date {
        let issued = min(
            certificate.notValidBefore.addingTimeInterval(ClusterCA.clockSkewAllowance.timeIntervalSeconds), certificate.notValidAfter)
        return issued.addingTimeInterval(certificate.notValidAfter.timeIntervalSince(issued) * 2 / 3)
    }

    /// Whether it is time to renew: at or after ``renewalDate``.
    public func needsRenewal(now: Date) -> Bool {
        now >= renewalDate
    }

    /// A verifier for peers of the same cluster.
    public var peerVerifier: ClusterPeerVerifier { ClusterPeerVerifier(caCertificate: caCertificate) }
}
