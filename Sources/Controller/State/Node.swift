/// What an agent says about its host when it registers: how to reach it, what it is, and how
/// much it offers.
public struct NodeRegistration: Sendable, Hashable, Codable {
    /// Unique in the cluster; what `node.name` constraints and instance placements name.
    public var name: String
    /// Where other agents reach this one (host:port).
    public var address: String
    /// Operator-given labels, matched by `label.<key>` constraints.
    public var labels: [String: String]
    /// What `node.*` constraints compare against.
    public var attributes: NodeAttributes
    /// What the scheduler may reserve here.
    public var capacity: NodeCapacity
    /// The ports the scheduler may assign to dynamic ports of instances on this node
    /// (agentd's `--port-range`).
    public var dynamicPorts: PortRange

    /// A registration as agentd builds it from its host and configuration.
    public init(
        name: String, address: String, labels: [String: String] = [:], attributes: NodeAttributes, capacity: NodeCapacity,
        dynamicPorts: PortRange = .defaultDynamic
    ) {
        self.name = name
        self.address = address
        self.labels = labels
        self.attributes = attributes
        self.capacity = capacity
        self.dynamicPorts = dynamicPorts
    }
}

/// Facts about a node that placement constraints compare against.
public struct NodeAttributes: Sendable, Hashable, Codable {
    /// `uname -s` in lower case: "linux".
    public var os: String
    /// `uname -m`: "x86_64", "aarch64".
    public var arch: String
    /// `uname -r`: "6.1.0-13-amd64"; compared with the `version` operator.
    public var kernel: String
    /// Online CPUs.
    public var cpus: Int
    /// Total memory.
    public var memoryBytes: Int64

    /// Attributes as `uname` and `/proc` report them.
    public init(os: String = "linux", arch: String = "x86_64", kernel: String = "6.1.0", cpus: Int, memoryBytes: Int64) {
        self.os = os
        self.arch = arch
        self.kernel = kernel
        self.cpus = cpus
        self.memoryBytes = memoryBytes
    }
}

/// What the scheduler may reserve on a node for instances.
public struct NodeCapacity: Sendable, Hashable, Codable {
    /// Thousandths of a core, so that reservations add up exactly (manifests allow 3 decimals).
    public var cpuMillicores: Int
    /// Memory the scheduler may reserve (the host's, less what the operator keeps back).
    public var memoryBytes: Int64
    /// Processes and threads the node allows. Recorded for operators; not reserved against,
    /// because a service's `pids` is a ceiling (pids.max), not a reservation, and the kernel's
    /// pid_max (4M on 64-bit) dwarfs any sum of them.
    public var pids: Int

    /// A capacity in the units the scheduler sums.
    public init(cpuMillicores: Int, memoryBytes: Int64, pids: Int = 4_194_304) {
        self.cpuMillicores = cpuMillicores
        self.memoryBytes = memoryBytes
        self.pids = pids
    }
}

/// An inclusive range of port numbers.
public struct PortRange: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The first port of the range.
    public var lowest: Int
    /// The last port of the range, included.
    public var highest: Int

    /// The ports from `lowest` to `highest`, both included.
    public init(_ lowest: Int, _ highest: Int) {
        self.lowest = lowest
        self.highest = highest
    }

    /// Above the registered ports and below Linux's default ephemeral range (32768–60999),
    /// so that assigned ports never collide with outgoing connections' local ports.
    public static let defaultDynamic = PortRange(20_000, 32_000)

    /// How many ports the range holds.
    public var count: Int { max(0, highest - lowest + 1) }

    /// Whether `port` is in the range.
    public func contains(_ port: Int) -> Bool { port >= lowest && port <= highest }

    public var description: String { "\(lowest)-\(highest)" }
}

/// Whether a node takes new instances.
public enum NodeStatus: String, Sendable, Hashable, Codable {
    /// Heartbeating and accepting instances.
    case ready
    /// Missed its heartbeats (or was marked down); its instances are lost.
    case down
    /// Heartbeating, but its instances are being moved elsewhere and it takes no new ones.
    case draining
    /// Heartbeating and keeping its instances, but taking no new ones (eligibility off).
    case ineligible
}

/// A node as the cluster knows it.
public struct NodeRecord: Sendable, Hashable, Codable {
    /// What the node last registered.
    public var registration: NodeRegistration
    /// Set by ``ControllerCommand/markNodeDown(_:)``, cleared by the next heartbeat or registration.
    public var isDown: Bool
    /// Set by an operator; kept across restarts and down periods of the node, unlike `isDown`.
    public var isDraining: Bool
    /// The proposer's time of its last heartbeat or registration.
    public var lastHeartbeat: Timestamp
    /// The log index of its first registration.
    public var registeredIndex: UInt64
    /// When it was marked down, while it is (nil in snapshots from before this was kept).
    public var downSince: Timestamp?
    /// While draining: when whatever still runs there is stopped regardless of rollouts.
    public var drainDeadline: Timestamp?
    /// Whether new instances may be placed here (an operator's switch; what runs stays).
    public var isEligible = true

    public init(registration: NodeRegistration, isDown: Bool, isDraining: Bool, lastHeartbeat: Timestamp, registeredIndex: UInt64) {
        self.registration = registration
        self.isDown = isDown
        self.isDraining = isDraining
        self.lastHeartbeat = lastHeartbeat
        self.registeredIndex = registeredIndex
    }

    private enum CodingKeys: String, CodingKey {
        case registration, isDown, isDraining, lastHeartbeat, registeredIndex, downSince, drainDeadline, isEligible
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        registration = try container.decode(NodeRegistration.self, forKey: .registration)
        isDown = try container.decode(Bool.self, forKey: .isDown)
        isDraining = try container.decode(Bool.self, forKey: .isDraining)
        lastHeartbeat = try container.decode(Timestamp.self, forKey: .lastHeartbeat)
        registeredIndex = try container.decode(UInt64.self, forKey: .registeredIndex)
        downSince = try container.decodeIfPresent(Timestamp.self, forKey: .downSince)
        drainDeadline = try container.decodeIfPresent(Timestamp.self, forKey: .drainDeadline)
        // Snapshots from before eligibility was kept: every node took instances.
        isEligible = try container.decodeIfPresent(Bool.self, forKey: .isEligible) ?? true
    }

    /// The node's name.
    public var name: String { registration.name }

    /// Down wins over draining: a down node runs nothing, whatever the operator intended.
    public var status: NodeStatus {
        if isDown { return .down }
        if isDraining { return .draining }
        return isEligible ? .ready : .ineligible
    }
}
