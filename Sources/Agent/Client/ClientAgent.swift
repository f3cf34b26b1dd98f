import Cluster
import Controller
import Foundation
import Hummingbird
import Logging
import Prometheus
import ServiceLifecycle
import Supervisor

/// The composition of a client agent (`agentd --join HOST:PORT --token T` without
/// `--server`): the node worker with its supervisor, fed by a ``ServerFollower`` instead of a
/// Raft replica. It takes no part in Raft and does not listen on a cluster port; it dials the
/// servers.
///
/// Stopping it leaves services running, as a server agent does.
public final class ClientAgent: Sendable {
    public let configuration: AgentConfiguration
    let logger: Logger
    let membership: ClusterMembership
    let follower: ServerFollower
    let worker: NodeWorker
    let registry: PrometheusCollectorRegistry

    /// Loads this client's identity (or joins to get one) and its saved copies.
    public static func make(configuration: AgentConfiguration, logger: Logger, registry: PrometheusCollectorRegistry) async throws -> ClientAgent {
        guard let settings = configuration.cluster, settings.role == .client else {
            throw AgentError.configuration("a client agent needs --join HOST:PORT --token T (without --server)")
        }
        try Agent.makePrivateDirectory(configuration.stateDirectory)
        let membership = try await ClusterMembership.prepare(
            settings: settings, stateDirectory: configuration.stateDirectory, nodeName: configuration.nodeName, logger: logger)
        let follower = try ServerFollower(
            nodeName: configuration.nodeName, transport: membership.transport,
            store: try AssignmentStore(stateDirectory: configuration.stateDirectory), joinedServers: membership.joinedServers, logger: logger)
        let worker = try NodeWorker.make(configuration: configuration, control: follower, logger: logger)
        membership.localLogs.set(SupervisorLogSource(supervisor: worker.supervisor))
        return ClientAgent(configuration: configuration, logger: logger, membership: membership, follower: follower, worker: worker, registry: registry)
    }

    private init(
        configuration: AgentConfiguration, logger: Logger, membership: ClusterMembership, follower: ServerFollower, worker: NodeWorker,
        registry: PrometheusCollectorRegistry
    ) {
        self.configuration = configuration
        self.logger = logger
        self.membership = membership
        self.follower = follower
        self.worker = worker
        self.registry = registry
    }

    /// Runs until a termination signal; then stops, leaving services running.
    public func run() async throws {
        logger.info("client agent starting", metadata: ["id": "\(membership.identity.nodeID)", "node": "\(configuration.nodeName)"])
        let follower = self.follower
        var services: [any Service] = [
            LoopService(name: "follow-servers") { await follower.run() },
            LoopService(name: "node") { await self.worker.run() },
            LoopService(name: "certificate-renewal") {
                await self.membership.renewCertificates { follower.knownServers() }
            },
        ]
        // DNS and the local proxy follow a server's catalog, through the same relay as the API.
        var dns: DiscoveryDNS?
        if let settings = configuration.dns {
            dns = try await DiscoveryDNS.start(
                settings: settings, advertisedHost: HostPort(configuration.advertiseAddress)?.host, logger: logger)
        }
        let catalogFollower = CatalogFollower(
            source: RelayedCatalogSource { request, timeout in try await follower.relay(request, timeout: timeout) }, dns: dns,
            upstreams: worker.supervisor.upstreams)
        services.append(LoopService(name: "catalog") { await catalogFollower.run() })
        let relayTimeout = configuration.maxQueryWait + .seconds(15)
        services += try APIListeners.services(
            configuration: configuration, logger: logger, readyStatus: "relaying the API to the servers on \(configuration.apiSocketPath)",
            certificate: membership.currentTLSMaterial
        ) { token in
            let router = Router(context: BasicRequestContext.self)
            router.add(
                middleware: APIForwardingMiddleware(
                    token: token.map(BearerToken.init), forward: { request in try await follower.relay(request, timeout: relayTimeout) },
                    forwardStream: { request in try await follower.relayStream(request) }, streamLimit: relayTimeout,
                    answerLocally: { [worker, nodeName = configuration.nodeName] request in
                        guard request.method == .get, request.uri.path == "/v1/images" else { return nil }
                        let body = try APIJSON.encoder().encode(APIMapping.imageList(node: nodeName, worker.images))
                        return Response(status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(data: body)))
                    }))
            return router
        }
        await Agent.runUntilTerminated(services, logger: logger)
        await worker.supervisor.detach()
        await membership.transport.shutdown()
        logger.info("agent stopped; services left running")
    }
}
