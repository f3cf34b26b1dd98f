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
    /// `router(token)` builds the router for one listener: no token on the socket, which its
    /// permissions guard. `certificate` gives the node's credentials as they are now, on an
    /// agent that has a cluster identity; a dev agent, which has none, serves plain HTTP.
    static func services(
        configuration: AgentConfiguration, logger: Logger, readyStatus: String,
        certificate: (@Sendable () throws -> ClusterTLSMaterial)?,
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
                router: try router(nil),
                configuration: ApplicationConfiguration(address: .unixDomainSocket(path: socketPath), serverName: "agentd"),
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
            let server: HTTPServerBuilder = try certificate.map { try .tls(tlsConfiguration: APITLS.configuration($0)) } ?? .http1()
            logger.info("API listening", metadata: ["tcp": "\(host):\(port)", "tls": "\(certificate != nil)"])
            services.append(Application(
                router: try router(token), server: server,
                configuration: ApplicationConfiguration(address: .hostname(host, port: port), serverName: "agentd"), logger: apiLogger))
        }
        return services
    }
}
