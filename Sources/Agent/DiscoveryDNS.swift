import Controller
import Discovery
import Logging
import NIOPosix

/// Where and how an agent answers DNS for the catalog (`--dns-addr`, `--dns-domain`, `--dns-ttl`).
public struct DNSSettings: Sendable, Hashable {
    public var host: String
    /// 0: the kernel picks (tests).
    public var port: Int
    /// The zone, e.g. `flotilla` (answered as `web.service.flotilla.`).
    public var domain: String
    /// The TTL of answers and of negative answers.
    public var ttl: Duration

    public static let defaultPort = 8600

    public init(host: String = "127.0.0.1", port: Int = Self.defaultPort, domain: String = "flotilla", ttl: Duration = .zero) {
        self.host = host
        self.port = port
        self.domain = domain
        self.ttl = ttl
    }
}

/// The agent's DNS server, answering from its own copy of the catalog (handed over by the
/// agent's `CatalogFollower` at each change).
final class DiscoveryDNS: Sendable {
    let settings: DNSSettings
    let server: DNSServer
    let logger: Logger

    /// Binds the server's UDP and TCP sockets, answering from `initial` until the follower has
    /// the source's first catalog (which a client, whose servers may not answer, does not wait for).
    static func start(settings: DNSSettings, initial catalog: Catalog = Catalog(), logger: Logger) async throws -> DiscoveryDNS {
        let server: DNSServer
        do {
            server = try DNSServer(
                configuration: .init(host: settings.host, port: settings.port), catalog: Self.dnsCatalog(catalog, settings: settings),
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
            try await server.start()
        } catch {
            throw AgentError.configuration(
                "DNS on \(settings.host):\(settings.port): \(error); give --dns-addr another HOST:PORT, or --dns-addr off to serve no DNS")
        }
        let dns = DiscoveryDNS(settings: settings, server: server, logger: logger)
        logger.info("serving DNS", metadata: ["address": "\(settings.host):\(server.port ?? settings.port)", "domain": "\(settings.domain)"])
        return dns
    }

    private init(settings: DNSSettings, server: DNSServer, logger: Logger) {
        self.settings = settings
        self.server = server
        self.logger = logger
    }

    /// Closes the server.
    func stop() async {
        try? await server.stop()
    }

    /// Answers from `catalog` from now on.
    func update(_ catalog: Catalog) {
        do {
            let problems = try server.update(Self.dnsCatalog(catalog, settings: settings))
            for problem in problems { logger.warning("left out of DNS", metadata: ["what": "\(problem)"]) }
        } catch {
            logger.error("DNS zone not updated", metadata: ["error": "\(error)"])
        }
    }

    /// The catalog as the DNS server takes it: instances at their node's address, the
    /// advertised port first (what SRV of the plain name carries), TCP ports only (SRV names
    /// say `_tcp`).
    static func dnsCatalog(_ catalog: Catalog, settings: DNSSettings) -> DNSCatalog {
        let nodes = catalog.nodes.sorted { $0.key < $1.key }.compactMap { name, host in
            DNSAddress(host).map { DNSNode(name: name, addresses: [$0]) }
        }
        let instances = catalog.instances.compactMap { instance -> DNSInstance? in
            guard let address = DNSAddress(instance.address) else { return nil }
            let ordered = (instance.port.map { [$0] } ?? []) + instance.ports.filter { $0 != instance.port }
            let ports = ordered.filter { $0.protocol == .tcp }.map { DNSPort(name: $0.name, number: UInt16(clamping: $0.number)) }
            return DNSInstance(
                service: instance.name, tags: instance.tags, node: instance.node, address: address, ports: ports,
                passing: instance.health == .passing, weight: UInt16(clamping: instance.weight))
        }
        return DNSCatalog(
            domain: settings.domain, ttl: settings.ttl, serial: UInt32(truncatingIfNeeded: catalog.index), instances: instances, nodes: nodes,
            nameserverAddresses: DNSAddress(settings.host).map { [$0] } ?? [])
    }
}
