/// How the local proxy chooses an instance of an upstream for each connection: the strategies
/// of the `Balancing` library, spelled as it spells them.
public enum UpstreamStrategy: String, ManifestEnum {
    case roundRobin = "round-robin"
    case random
    case weighted
    case leastOutstanding = "least-outstanding"
    case powerOfTwoChoices = "power-of-two-choices"
    case consistentHash = "consistent-hash"
    public static var typeDescription: String { "balancing strategy" }
}

/// A service this one calls through the agent's local proxy (Consul Connect's and Nomad's
/// `upstreams`): the agent listens on `127.0.0.1:localPort` where the instance runs (its own
/// network namespace in `private` mode, the node's loopback in `host` mode) and spreads the
/// connections over the passing instances of `service`, following the catalog.
public struct Upstream: ManifestObject, Hashable {
    /// The discovery name of the service called.
    public var service: String
    public var localPort: Int
    /// The name of the upstream's port to connect to; nil: the port it advertises.
    public var port: String?
    /// Only instances with this tag.
    public var tag: String?
    public var strategy: UpstreamStrategy
    public var connectTimeout: Duration
    /// Connection failures in a row that eject an instance.
    public var ejectAfter: Int
    /// How long a first ejection lasts (later ones of the same instance last longer).
    public var ejectFor: Duration

    public init(service: String, localPort: Int, port: String? = nil, tag: String? = nil, strategy: UpstreamStrategy = .leastOutstanding,
                connectTimeout: Duration = .seconds(5), ejectAfter: Int = 3, ejectFor: Duration = .seconds(10))
    {
        self.service = service
        self.localPort = localPort
        self.port = port
        self.tag = tag
        self.strategy = strategy
        self.connectTimeout = connectTimeout
        self.ejectAfter = ejectAfter
        self.ejectFor = ejectFor
    }

    /// `UPSTREAM_API_ADDR` for the service `api`: where the process finds the local address.
    public var environmentName: String {
        "UPSTREAM_" + service.uppercased().replacingAll("-", with: "_") + "_ADDR"
    }

    /// The address the process connects to.
    public var localAddress: String { "127.0.0.1:\(localPort)" }

    public static let spec = ObjectSpec(
        "Upstream", doc: "A service this one calls through the agent's local TCP proxy. The agent listens on `127.0.0.1:<localPort>` where the instance runs (inside its own network namespace in `private` mode, before the process starts; on the node's loopback in `host` mode, shared by the instances of the node) and forwards each connection to a passing instance of the upstream, chosen by `strategy`. The process finds the address in `UPSTREAM_<SERVICE>_ADDR`.",
        fields: [
            FieldSpec("service", String.self, required: true, example: "api", constraints: [.dnsLabel(maxLength: 63)], doc: "The discovery name of the service to call (its `discovery.name`, by default its name), in any application."),
            FieldSpec("localPort", Int.self, required: true, example: 9000, constraints: [.integerRange(1...65535)], doc: "The port on 127.0.0.1 that the process connects to."),
            FieldSpec("port", String.self, defaultDescription: "the port the upstream advertises (its `discovery.port`)", example: "grpc", doc: "The name of the upstream's port to connect to."),
            FieldSpec("tag", String.self, example: "v2", constraints: [.dnsLabel(maxLength: 63)], doc: "Only instances registered with this tag."),
            FieldSpec("strategy", UpstreamStrategy.self, default: "least-outstanding", doc: "How an instance is chosen for each connection: `round-robin`, `random`, `weighted` (by `discovery.weight`), `least-outstanding` (fewest open connections through this node), `power-of-two-choices`, or `consistent-hash` (on the calling instance, with bounded load: each caller keeps to one instance while it can take more)."),
            FieldSpec("connectTimeout", Duration.self, default: "5s", constraints: [.positiveDuration], doc: "How long a connection to an instance may take to be established; then the next instance is tried."),
            FieldSpec("ejectAfter", Int.self, default: 3, constraints: [.integerRange(1...100)], doc: "Connection failures in a row (refused, reset, timed out) after which an instance gets no connections for `ejectFor`. A failed connection is retried on another instance, up to 3 attempts."),
            FieldSpec("ejectFor", Duration.self, default: "10s", constraints: [.positiveDuration], doc: "How long a first ejection lasts; each further one of the same instance lasts that much longer, up to ten times as long."),
        ])

    public init?(reading reader: ObjectReader) {
        let service = reader.read("service", as: String.self)
        let localPort = reader.read("localPort", as: Int.self)
        port = reader.read("port")
        tag = reader.read("tag")
        strategy = reader.read("strategy") ?? .leastOutstanding
        connectTimeout = reader.read("connectTimeout") ?? .seconds(5)
        ejectAfter = reader.read("ejectAfter") ?? 3
        ejectFor = reader.read("ejectFor") ?? .seconds(10)
        guard let service, let localPort else { return nil }
        self.service = service
        self.localPort = localPort
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("service", service)
        writer.write("localPort", localPort)
        writer.write("port", port)
        writer.write("tag", tag)
        writer.write("strategy", strategy)
        writer.write("connectTimeout", connectTimeout)
        writer.write("ejectAfter", ejectAfter)
        writer.write("ejectFor", ejectFor)
    }
}
