import Cluster
import NIOSSL

/// The TCP API's TLS (issue 13): an agent in a cluster serves it with its node certificate,
/// signed by the cluster CA, so that deployctl can tell the agent from anyone else on the
/// network before it sends the bearer token. The certificate names the node and its advertised
/// address. It is renewed while the agent runs (``CertificateRenewal``): every handshake
/// takes the credentials as they are then, so the listener never serves an expired one.
enum APITLS {
    /// A server configuration presenting `current()`'s certificate chain. Client certificates
    /// are not asked for: the bearer token authenticates the caller, and deployctl runs on
    /// machines that hold no node identity. TLS 1.2 and up, for curl and the HTTP libraries
    /// operators script with.
    static func configuration(_ current: @escaping @Sendable () throws -> ClusterTLSMaterial) throws -> TLSConfiguration {
        let material = try current()
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: material.certificateChain.map { .certificate($0) }, privateKey: .privateKey(material.privateKey))
        configuration.minimumTLSVersion = .tlsv12
        configuration.sslContextCallback = { _, promise in
            do {
                let renewed = try current()
                var override = NIOSSLContextConfigurationOverride()
                override.certificateChain = renewed.certificateChain.map { .certificate($0) }
                override.privateKey = .privateKey(renewed.privateKey)
                promise.succeed(override)
            } catch {
                promise.fail(error)
            }
        }
        return configuration
    }
}
