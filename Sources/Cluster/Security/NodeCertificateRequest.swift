import Crypto
import Foundation
import SwiftASN1
import X509

/// A node's side of getting a certificate: it makes its own P-256 key and a PKCS #10 request
/// (RFC 2986) signed with it, sends only the request, and pairs the certificate it gets back
/// with the key it kept. The private key never leaves the node.
public struct NodeCertificateRequest: Sendable {
    /// The name the node asks a certificate for.
    public let nodeName: String
    /// The node's new private key, kept for the credentials.
    public let privateKey: P256.Signing.PrivateKey
    /// The signed request: subject `CN=<nodeName>` and the public key.
    public let request: CertificateSigningRequest

    /// A request for `nodeName` with a fresh key (also on renewal: a new key each time, so a key
    /// that leaked stops working when its certificate ends).
    public init(nodeName: String) throws(ClusterSecurityError) {
        try self.init(nodeName: nodeName, privateKey: P256.Signing.PrivateKey())
    }

    /// A request for `nodeName` signed with `privateKey`.
    public init(nodeName: String, privateKey: P256.Signing.PrivateKey) throws(ClusterSecurityError) {
        try NodeName.validate(nodeName)
        self.nodeName = nodeName
        self.privateKey = privateKey
        self.request = try encoding("the certificate signing request") {
            try CertificateSigningRequest(
                version: .v1,
                subject: try DistinguishedName { CommonName(nodeName) },
                privateKey: Certificate.PrivateKey(privateKey),
                attributes: CertificateSigningRequest.Attributes(),
                signatureAlgorithm: .ecdsaWithSHA256)
        }
    }

    /// The request as DER, the form it travels in.
    public func derBytes() throws(ClusterSecurityError) -> [UInt8] {
        try encoding("the certificate signing request") { try DEREncoding.bytes(of: request) }
    }

    /// Pairs the certificate the issuer sent back with the kept key. `caCertificate` is the CA
    /// the node already trusts (the one whose pin the join token carried, or the one of its
    /// current credentials on renewal), never one taken from the issuer's answer. The certificate
    /// must be for this key and must pass ``ClusterPeerVerifier`` for this node name at `now`.
    public func credentials(
        issuedCertificateDER: [UInt8], caCertificate: Certificate, now: Date
    ) throws(ClusterSecurityError) -> NodeCredentials {
        let verifier = ClusterPeerVerifier(caCertificate: caCertificate)
        switch verifier.verify(peerCertificateDER: issuedCertificateDER, expectedNodeName: nodeName, now: now) {
        case .failure(let rejection):
            throw .issuedCertificateMismatch(reason: rejection.description)
        case .success(let peer):
            guard peer.certificate.publicKey == Certificate.PublicKey(privateKey.publicKey) else {
                throw .issuedCertificateMismatch(reason: "it is for another public key than the one this node sent")
            }
            return try NodeCredentials(privateKey: privateKey, certificate: peer.certificate, caCertificate: caCertificate)
        }
    }
}
