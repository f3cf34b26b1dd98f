// The input of the DNS server: a snapshot of what discovery knows, in plain values. Whoever derives
// it from the cluster's replicated state builds one per change and hands it to DNSServer.update.

/// Everything the DNS server answers from, at one moment.
public struct DNSCatalog: Sendable {
    /// The zone the server is authoritative for, e.g. `flotilla.` (the trailing dot is optional).
    public var domain: String
    /// The TTL of every answer, and the SOA minimum, which is the negative-caching TTL of
    /// NXDOMAIN and NODATA answers (RFC 2308 §4–5). Whole seconds; the default is 0.
    public var ttl: Duration
    /// The SOA serial (RFC 1035 §3.3.13): for a caller that wants to show which state the zone
    /// was built from, e.g. the low 32 bits of the replicated log's index. Serial arithmetic is
    /// RFC 1982's, so wrapping is fine.
    public var serial: UInt32
    /// Every instance, passing or not: only passing ones are answered.
    public var instances: [DNSInstance]
    /// Every node, answered as `NAME.node.DOMAIN`.
    public var nodes: [DNSNode]
    /// Addresses of `ns.DOMAIN`, the name server named by the SOA and NS records; typically the
    /// address the agent's DNS server listens on. Empty: `ns.DOMAIN` exists without addresses.
    public var nameserverAddresses: [DNSAddress]

    /// A catalog; defaults: domain `flotilla.`, TTL 0 s, serial 1.
    public init(
        domain: String = "flotilla.", ttl: Duration = .zero, serial: UInt32 = 1,
        instances: [DNSInstance] = [], nodes: [DNSNode] = [], nameserverAddresses: [DNSAddress] = []
    ) {
        self.domain = domain
        self.ttl = ttl
        self.serial = serial
        self.instances = instances
        self.nodes = nodes
        self.nameserverAddresses = nameserverAddresses
    }
}

/// One running instance of a service.
public struct DNSInstance: Sendable {
    /// The service's name: `NAME.service.DOMAIN`. One DNS label (1–63 of `a-z0-9-_`, any case).
    public var service: String
    /// Tags: `TAG.NAME.service.DOMAIN` lists the instances that carry the tag.
    public var tags: [String]
    /// The node the instance runs on: an SRV target is `NODE.node.DOMAIN` when the instance's
    /// address is one of that node's addresses.
    public var node: String
    /// Where the instance listens.
    public var address: DNSAddress
    /// Its ports. The first is the one SRV records of `NAME.service.DOMAIN` carry; each named port
    /// is also `_PORTNAME._tcp.NAME.service.DOMAIN` (RFC 2782's service label).
    public var ports: [DNSPort]
    /// Whether its health checks pass: failing instances are not answered.
    public var passing: Bool
    /// The SRV weight (RFC 2782): relative share among records of the same priority. Default 1.
    public var weight: UInt16

    /// An instance; `weight` defaults to 1.
    public init(
        service: String, tags: [String] = [], node: String, address: DNSAddress, ports: [DNSPort] = [],
        passing: Bool, weight: UInt16 = 1
    ) {
        self.service = service
        self.tags = tags
        self.node = node
        self.address = address
        self.ports = ports
        self.passing = passing
        self.weight = weight
    }
}

/// A port of an instance.
public struct DNSPort: Sendable, Hashable {
    /// The manifest's port name (`http`), or nil for an unnamed port.
    public var name: String?
    /// The port number.
    public var number: UInt16

    /// A port, named or not.
    public init(name: String? = nil, number: UInt16) {
        self.name = name
        self.number = number
    }
}

/// A node of the cluster.
public struct DNSNode: Sendable {
    /// `NAME.node.DOMAIN`: one DNS label.
    public var name: String
    /// Its addresses, answered as A and AAAA records.
    public var addresses: [DNSAddress]

    /// A node.
    public init(name: String, addresses: [DNSAddress]) {
        self.name = name
        self.addresses = addresses
    }
}

/// Something of the catalog that the zone had to leave out, and where it is.
public struct DNSCatalogProblem: Sendable, Equatable, CustomStringConvertible {
    /// Where in the catalog, e.g. `instances[3].tags[0]`.
    public var path: String
    /// What is wrong and what was left out.
    public var message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `path: message`.
    public var description: String { "\(path): \(message)" }
}

/// The catalog cannot become a zone at all.
public struct DNSCatalogError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A stable code.
    public var code: String
    /// What is wrong and what to do.
    public var message: String

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}
