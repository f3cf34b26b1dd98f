import Controller
import Discovery
import Logging
import NIOPosix
import Synchronization

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
    /// Where `ns.DOMAIN` points (see `nameserverAddresses`).
    let nameservers: [DNSAddress]
    let server: DNSServer
    let logger: Logger
    /// What the last zone left out, logged again only when it changes: the catalog changes at
    /// every health transition, and one misconfigured node would otherwise fill the log.
    private let lastLeftOut = Mutex<[String]>([])

    /// Binds the server's UDP and TCP sockets, answering from `initial` until the follower has
    /// the source's first catalog (which a client, whose servers may not answer, does not wait for).
    /// `advertisedHost` is the node's advertised host, named as the nameserver's address when
    /// the server listens on every address.
    static func start(
        settings: DNSSettings, advertisedHost: String?, initial catalog: Catalog = Catalog(), logger: Logger
    ) async throws -> DiscoveryDNS {
        let server: DNSServer
        let nameservers = nameserverAddresses(settings: settings, advertisedHost: advertisedHost)
        do {
            server = try DNSServer(
                configuration: .init(host: settings.host, port: settings.port),
                catalog: Self.dnsCatalog(catalog, settings: settings, nameservers: nameservers).catalog,
                eventLoopGroup: MultiThreadedEventLoopGroup.singleton)
            try await server.start()
        } catch {
            throw AgentError.configuration(
                "DNS on \(settings.host):\(settings.port): \(error); give --dns-addr another HOST:PORT, or --dns-addr off to serve no DNS")
        }
        let dns = DiscoveryDNS(settings: settings, nameservers: nameservers, server: server, logger: logger)
        logger.info("serving DNS", metadata: ["address": "\(settings.host):\(server.port ?? settings.port)", "domain": "\(settings.domain)"])
        return dns
    }

    private init(settings: DNSSettings, nameservers: [DNSAddress], server: DNSServer, logger: Logger) {
        self.settings = settings
        self.nameservers = nameservers
        self.server = server
        self.logger = logger
    }

    /// Closes the server.
    func stop() async {
        try? await server.stop()
    }

    /// Answers from `catalog` from now on.
    func update(_ catalog: Catalog) {
        let (zoneCatalog, unaddressed) = Self.dnsCatalog(catalog, settings: settings, nameservers: nameservers)
        let problems: [DNSCatalogProblem]
        do {
            problems = try server.update(zoneCatalog)
        } catch {
            logger.error("DNS zone not updated", metadata: ["error": "\(error)"])
            return
        }
        let leftOut = (unaddressed + problems).map(\.description)
        let changed = lastLeftOut.withLock { last in
            defer { last = leftOut }
            return last != leftOut
        }
        guard changed else { return }
        for problem in leftOut { logger.warning("left out of DNS", metadata: ["what": "\(problem)"]) }
    }

    /// The addresses `ns.DOMAIN` answers: the listening address; when that is every address
    /// (0.0.0.0 or ::), which no client can send to, the node's advertised host if it is an IP
    /// address; else none (the NS record stays, without glue).
    static func nameserverAddresses(settings: DNSSettings, advertisedHost: String?) -> [DNSAddress] {
        guard let listening = DNSAddress(settings.host) else { return [] }
        guard listening.isUnspecified else { return [listening] }
        return advertisedHost.flatMap(DNSAddress.init).map { [$0] } ?? []
    }

    /// The catalog as the DNS server takes it: instances at their node's address, the
    /// advertised port first (what SRV of the plain name carries), TCP ports only (SRV names
    /// say `_tcp`). Nodes and instances whose address is a host name rather than an IP address
    /// have no A or AAAA record to give: they are left out and named in `unaddressed`.
    static func dnsCatalog(
        _ catalog: Catalog, settings: DNSSettings, nameservers: [DNSAddress]
    ) -> (catalog: DNSCatalog, unaddressed: [DNSCatalogProblem]) {
        var unaddressed: [DNSCatalogProblem] = []
        let nodes = catalog.nodes.sorted { $0.key < $1.key }.compactMap { name, host -> DNSNode? in
            guard let address = DNSAddress(host) else {
                unaddressed.append(Self.unaddressed(path: "node \(name)", host: host))
                return nil
            }
            return DNSNode(name: name, addresses: [address])
        }
        let instances = catalog.instances.compactMap { instance -> DNSInstance? in
            guard let address = DNSAddress(instance.address) else {
                unaddressed.append(Self.unaddressed(path: "instance \(instance.id)", host: instance.address))
                return nil
            }
            let ordered = (instance.port.map { [$0] } ?? []) + instance.ports.filter { $0 != instance.port }
            let ports = ordered.filter { $0.protocol == .tcp }.map { DNSPort(name: $0.name, number: UInt16(clamping: $0.number)) }
            return DNSInstance(
                service: instance.name, tags: instance.tags, node: instance.node, address: address, ports: ports,
                passing: instance.health == .passing, weight: UInt16(clamping: instance.weight))
        }
        let zone = DNSCatalog(
            domain: settings.domain, ttl: settings.ttl, serial: UInt32(truncatingIfNeeded: catalog.index), instances: instances, nodes: nodes,
            nameserverAddresses: nameservers)
        return (zone, unaddressed)
    }

    private static func unaddressed(path: String, host: String) -> DNSCatalogProblem {
        DNSCatalogProblem(
            path: path,
            message: "its node's address \(host) is a host name, not an IP address, so DNS cannot answer it (HTTP lists it); "
                + "start that agent with --advertise IP:PORT")
    }
}
