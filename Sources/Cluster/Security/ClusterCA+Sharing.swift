import Crypto
import Foundation
import X509

extension ClusterCA {
    /// The CA as one server hands it to another over their mutual-TLS connection, so that
    /// every server can admit joins and renew certificates (Consul's and Nomad's servers all
    /// hold what signs their agents): the certificate, then the private key, as PEM.
    public func sharedBundle() throws(ClusterSecurityError) -> [UInt8] {
        try PEMFiles.encode([certificate]) + Array(privateKey.pemRepresentation.utf8) + [UInt8(ascii: "\n")]
    }

    /// Reads a bundle made by ``sharedBundle()``, and accepts it only if its certificate is
    /// `expected`, the CA that signed this agent's own certificate: a server never takes a CA
    /// other than its cluster's.
    public static func receive(_ bundle: [UInt8], expected: Certificate) throws(ClusterSecurityError) -> ClusterCA {
        let text = String(decoding: bundle, as: UTF8.self)
        let marker = "-----END CERTIFICATE-----"
        guard let end = text.range(of: marker) else {
            throw .unreadableRequest(reason: "the CA another server sent holds no certificate")
        }
        let certificate: Certificate
        let key: P256.Signing.PrivateKey
        do {
            certificate = try Certificate(pemEncoded: String(text[..<end.upperBound]))
            key = try P256.Signing.PrivateKey(pemRepresentation: String(text[end.upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            throw .unreadableRequest(reason: "the CA another server sent does not decode: \(error)")
        }
        guard certificate == expected else {
            throw .unreadableRequest(reason: "another server sent a CA that is not the one that signed this agent's certificate")
        }
        return try ClusterCA(certificate: certificate, privateKey: key)
    }
}
