import AgentAPI
import Cluster
import Controller
import Foundation
import Hummingbird
import Logging
import Metrics
import NIOCore
import Prometheus
import Raft
import ServiceLifecycle
import Supervisor
import Synchronization

/// The composition of one agent: the Raft node with the controller's state machine, the node
/// worker with its supervisor, the leader's loops and the HTTP API.
///
/// Stopping it (SIGTERM, SIGINT) stops the API and the loops and detaches the supervisor:
/// services keep running, and the next agent adopts them (DESIGN.md §4).
public final class Agent: Sendable {
    public static let version = "0.1.0"

    public let configuration: AgentConfiguration
    let logger: Logger
    let node: RaftNode<ControllerMachine>
    let gateway: ClusterGateway
    let supervisor: NodeSupervisor
    let worker: NodeWorker
    let registry: PrometheusCollectorRegistry
    /// The cluster identity and transport of a server in a cluster; nil for a single node.
    let cluster: ClusterMembership?

    /// Opens the state (Raft log, snapshots, instance records) and sets everything up; nothing
    /// runs until ``run()``. With `configuration.cluster`, first loads, makes or gets (by
    /// joining) this server's cluster identity.
    public static func make(configuration: AgentConfiguration, logger: Logger, registry: PrometheusCollectorRegistry) async throws -> Agent {
        try Self.makePrivateDirectory(configuration.stateDirectory)
        var cluster: ClusterMembership?
        if let settings = configuration.cluster {
            cluster = try await ClusterMembership.prepare(
                settings: settings, stateDirectory: configuration.stateDirectory, nodeName: configuration.nodeName, logger: logger)
        }
        return try Agent(configuration: configuration, logger: logger, registry: registry, cluster: cluster)
    }

    /// A single-node agent (no cluster settings).
    public convenience init(configuration: AgentConfiguration, logger: Logger, registry: PrometheusCollectorRegistry) throws {
        try self.init(configuration: configuration, logger: logger, registry: registry, cluster: nil)
    }

    init(configuration: AgentConfiguration, logger: Logger, registry: PrometheusCollectorRegistry, cluster: ClusterMembership?) throws {
        self.configuration = configuration
        self.logger = logger
        self.registry = registry
        self.cluster = cluster
        try Self.makePrivateDirectory(configuration.stateDirectory)
        // A single node is the one voter of its group; a cluster's first server starts one with
        // itself; a joined server starts empty and learns the group from the leader's log.
        let bootstrap = cluster == nil ? ConfState(voters: [1]) : cluster?.bootstrapMembership
        let storage = try DurableLogStorage.open(directory: configuration.stateDirectory + "/raft", bootstrap: bootstrap)
        let feed = ChangeFeed()
        let ticksPerSecond = max(1, Int(Duration.seconds(1) / configuration.raftTick))
        let id = cluster?.identity.nodeID ?? 1
        let options = RaftNode<ControllerMachine>.Options(
            // 400 ms, randomized to 400–800 ms: a failover within half of etcd's (1–2 s), with
            // eight heartbeats in one timeout (Benchmarks/scripts/failover-bench).
            raft: RaftConfig(id: id, electionTimeoutTicks: max(8, ticksPerSecond * 2 / 5), heartbeatIntervalTicks: 1),
            tickInterval: configuration.raftTick)
        let directory = MembershipDirectory()
        let kvFeed = ChangeFeed()
        let machine = ControllerMachine(feed: feed, kvFeed: kvFeed, directory: directory)
        if let cluster {
            node = try RaftNode(options: options, storage: storage, machine: machine, transport: cluster.transport)
            gateway = ClusterGateway(
                node: node, feed: feed, kvFeed: kvFeed, directory: directory, forwarder: cluster.transport,
                nodeDownTimeout: configuration.nodeDownTimeout)
            cluster.attach(node: node, gateway: gateway)
        } else {
            let network = InProcessNetwork()
            node = try RaftNode(options: options, storage: storage, machine: machine, transport: network)
            network.register(1, node)
            gateway = ClusterGateway(node: node, feed: feed, kvFeed: kvFeed, directory: directory, nodeDownTimeout: configuration.nodeDownTimeout)
        }
        worker = try NodeWorker.make(configuration: configuration, control: ReplicaNodeControl(gateway: gateway), logger: logger)
        supervisor = worker.supervisor
    }

    /// Runs until a termination signal; then shuts down gracefully, leaving services running.
    public func run() async throws {
        if let cluster {
            let port = try await cluster.transport.start()
            logger.info("cluster port listening", metadata: ["port": "\(port)", "id": "\(cluster.identity.nodeID)"])
        }
        await node.start()
        if configuration.dev { await node.campaign() }
        let localLogs = SupervisorLogSource(supervisor: supervisor)
        cluster?.localLogs.set(localLogs)
        let logs: any InstanceLogSource =
            if let cluster { ClusterLogSource(local: localLogs, gateway: gateway, transport: cluster.transport, nodeName: configuration.nodeName) } else { localLogs }
        var api = APIContext(
            gateway: gateway, logs: logs, nodeName: configuration.nodeName, version: Self.version,
            metrics: { [registry] in registry.emitToString() },
            queryLimits: QueryLimits(maxWait: configuration.maxQueryWait))
        api.joinTokens = cluster?.joinTokens
        api.images = worker.images
        try cluster?.forwardedAPI.serve(api)
        // Bound before anything else runs, so that a taken port stops the agent with the reason.
        let catalogSource = ReplicaCatalogSource(gateway: gateway)
        var dns: DiscoveryDNS?
        if let settings = configuration.dns {
            dns = try await DiscoveryDNS.start(
                settings: settings, advertisedHost: HostPort(configuration.advertiseAddress)?.host,
                initial: await catalogSource.catalog(after: nil) ?? Catalog(), logger: logger)
        }
        let catalogFollower = CatalogFollower(source: catalogSource, dns: dns, upstreams: supervisor.upstreams)
        var services: [any Service] = [
            LoopService(name: "raft-metrics") { await self.publishRaftMetrics() },
            LoopService(name: "leader") { await LeaderLoop(gateway: self.gateway, logger: self.logger).run() },
            LoopService(name: "node") { await self.worker.run() },
        ]
        services.append(LoopService(name: "catalog") { await catalogFollower.run() })
        if let cluster {
            services.append(LoopService(name: "cluster") { await cluster.run(gateway: self.gateway) })
            services.append(LoopService(name: "certificate-renewal") {
                await cluster.renewCertificates { [gateway = self.gateway] in (try? await gateway.read { $0.servers }) ?? [] }
            })
        }
        services += try APIListeners.services(
            configuration: configuration, logger: logger, readyStatus: "serving the API on \(configuration.apiSocketPath)",
            certificate: cluster?.currentTLSMaterial,
            fastPath: { [logger] token in
                KVFastPath.Settings(handler: APIHandler(api: api), token: token.map(BearerToken.init), metrics: APIMetrics(), logger: logger)
            }
        ) { token in try APIRouter.router(api, token: token) }
        // Last of the agent's (only `runUntilTerminated`'s stop clock comes after it), so that
        // it is told of the shutdown first (ServiceGroup stops services in reverse order, each
        // after the one behind it has ended): blocking queries and streams
        // answer now, rather than the API's graceful shutdown waiting out their waits.
        services.append(LoopService(name: "release-waiting-queries") { [feed = gateway.feed, kvFeed = gateway.kvFeed, logger] in
            try? await gracefulShutdown()
            logger.info("stopping: blocking queries answered; other requests get \(Agent.shutdownLimit) to end")
            feed.finish()
            kvFeed.finish()
        })
        await Agent.runUntilTerminated(services, logger: logger)
        // Leave every service running, with its state on disk, for the next agent.
        await supervisor.detach()
        await node.stop()
        await cluster?.transport.shutdown()
        gateway.feed.finish()
        gateway.kvFeed.finish()
        logger.info("agent stopped; services left running")
    }

    /// How long a stop waits for what is running to end (requests still open above all) before
    /// it cancels it: a client that holds a request open must not hold the agent up.
    static let shutdownLimit = Duration.seconds(10)

    /// Runs `services` until SIGTERM or SIGINT (telling systemd's watchdog all is well
    /// meanwhile), then tells systemd the agent is stopping.
    static func runUntilTerminated(_ services: [any Service], logger: Logger) async {
        let watchdog = SystemdNotifier().startWatchdog()
        defer { watchdog?.cancel() }
        // Last, so that it is told of the stop first: when the stop began, to tell whether the
        // limit cut it short (ServiceGroup says so only at debug level).
        let stopBegan = Mutex<ContinuousClock.Instant?>(nil)
        let stopClock = LoopService(name: "stop-clock") {
            try? await gracefulShutdown()
            stopBegan.withLock { $0 = .now }
        }
        var configuration = ServiceGroupConfiguration(
            services: services + [stopClock], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        configuration.maximumGracefulShutdownDuration = shutdownLimit
        let group = ServiceGroup(configuration: configuration)
        do {
            try await group.run()
        } catch {
            logger.error("agent stopped with an error", metadata: ["error": "\(error)"])
        }
        if let began = stopBegan.withLock({ $0 }), ContinuousClock.now - began >= shutdownLimit - .milliseconds(100) {
            logger.notice("stopping: what was still running after \(shutdownLimit) (requests held open) was cut off")
        }
        _ = SystemdNotifier().stopping()
    }

    private func publishRaftMetrics() async {
        while !Task.isCancelled {
            let status = await gateway.raftStatus()
            Gauge(label: "flotilla_raft_term").record(Double(status.term))
            Gauge(label: "flotilla_raft_commit_index").record(Double(status.commit))
            Gauge(label: "flotilla_raft_applied_index").record(Double(status.applied))
            Gauge(label: "flotilla_raft_is_leader").record(status.leader == node.id ? 1.0 : 0.0)
            if let counts = try? await gateway.read({ state -> [String: Int] in
                var counts: [String: Int] = [:]
                for instance in state.instances.values where instance.node == self.configuration.nodeName { counts[instance.status.rawValue, default: 0] += 1 }
                return counts
            }) {
                for status in Controller.InstanceStatus.allCases {
                    Gauge(label: "flotilla_instances", dimensions: [("status", status.rawValue)]).record(Double(counts[status.rawValue] ?? 0))
                }
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    static func makePrivateDirectory(_ path: String) throws {
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    }
}

/// Why the agent cannot run as configured.
public enum AgentError: Error, CustomStringConvertible {
    case configuration(String)

    public var description: String {
        switch self {
        case .configuration(let message): message
        }
    }
}

/// A long-running loop as a lifecycle service: cancelled when the group shuts down.
struct LoopService: Service {
    let name: String
    let body: @Sendable () async -> Void

    init(name: String, _ body: @escaping @Sendable () async -> Void) {
        self.name = name
        self.body = body
    }

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await body()
        }
    }
}
