import NIOSSL
import X509

/// A node's credentials in swift-nio-ssl's types, for a `TLSConfiguration` on either end of a
/// cluster connection: present `certificateChain` with `privateKey`, trust only `trustRoots`.
public struct ClusterTLSMaterial: Sendable {
    /// The node certificate, then the CA certificate. The CA goes along so that a joining agent,
    /// which has only the pin, can check the CA the server presents (DESIGN.md §10).
    public var certificateChain: [NIOSSLCertificate]
    /// The node's private key.
    public var privateKey: NIOSSLPrivateKey
    /// The cluster CA certificate alone: no system roots, ever.
    public var trustRoots: [NIOSSLCertificate]
}

extension NodeCredentials {
    /// These credentials in swift-nio-ssl's types, converted through DER (certificates) and
    /// PEM (the key: PKCS #8, which BoringSSL reads without being told the key type).
    public func tlsMaterial() throws(ClusterSecurityError) -> ClusterTLSMaterial {
        do {
            let node = try NIOSSLCertificate(bytes: PEMFiles.der(certificate), format: .der)
            let ca = try NIOSSLCertificate(bytes: PEMFiles.der(caCertificate), format: .der)
            let key = try NIOSSLPrivateKey(bytes: Array(privateKey.pemRepresentation.utf8), format: .pem)
            return ClusterTLSMaterial(certificateChain: [node, ca], privateKey: key, trustRoots: [ca])
        } catch let error as ClusterSecurityError {
            throw error
        } catch {
            throw .encoding(reason: "converting node \(nodeName)'s credentials for swift-nio-ssl: \(error)")
        }
    }
}
