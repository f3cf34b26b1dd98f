import Cluster
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Supervisor
import Logging
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// The API's listeners, the same on every kind of agent: the root-only unix socket, and TCP
/// when configured (which needs the bearer token), over TLS on an agent of a cluster.
enum APIListeners {
    /// Every answer's `Server` header.
    static let serverName = "agentd"

    /// `router(token)` builds the router for one listener: no token on the socket, which its
    /// permissions guard. `certificate` gives the node's credentials as they are now, on an
    /// agent that has a cluster identity; a dev agent, which has none, serves plain HTTP.
    static func services(
        configuration: AgentConfiguration, logger: Logger, readyStatus: String,
        certificate: (@Sendable () throws -> ClusterTLSMaterial)?,
        fastPath: ((_ token: String?) -> KVFastPath.Settings)? = nil,
        router: (_ token: String?) throws -> Router<BasicRequestContext>
    ) throws -> [any Service] {
        try APISocket.prepare(configuration.apiSocketPath)
        let socketPath = configuration.apiSocketPath
        // Hummingbird sets metadata on this logger for every request (see
        // `DeferredMetadataLogHandler`).
        var apiLogger = logger
        apiLogger.handler = DeferredMetadataLogHandler(wrapping: logger.handler)
        var services: [any Service] = [
            Application(
                router: try router(nil), server: Self.http1(fastPath?(nil)),
                configuration: ApplicationConfiguration(address: .unixDomainSocket(path: socketPath), serverName: serverName),
                onServerRunning: { _ in
                    // Root-only (DESIGN.md §7): the directory is 0700 already; the socket too.
                    chmod(socketPath, 0o600)
                    logger.info("API listening", metadata: ["socket": "\(socketPath)"])
                    _ = SystemdNotifier().ready(status: readyStatus)
                },
                logger: apiLogger)
        ]
        if let host = configuration.apiTCPHost, let port = configuration.apiTCPPort {
            guard let token = configuration.apiToken, !token.isEmpty else {
                throw AgentError.configuration("the TCP API needs a token: give --token-file (requests then need `Authorization: Bearer <token>`)")
            }
            let http1 = Self.http1(fastPath?(token))
            let server: HTTPServerBuilder = try certificate.map { try .tls(http1, tlsConfiguration: APITLS.configuration($0)) } ?? http1
            logger.info("API listening", metadata: ["tcp": "\(host):\(port)", "tls": "\(certificate != nil)"])
            services.append(Application(
                router: try router(token), server: server,
                configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: serverName), logger: apiLogger))
        }
        return services
    }

    /// HTTP/1.1, with key-value writes taken on the event loop when `fastPath` is given.
    private static func http1(_ fastPath: KVFastPath.Settings?) -> HTTPServerBuilder {
        .http1(configuration: .init(additionalChannelHandlers: fastPath.map { [KVFastPath.Installer(settings: $0)] } ?? []))
    }
}
