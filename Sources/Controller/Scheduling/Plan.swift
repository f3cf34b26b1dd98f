/// What the leader asks the scheduler to look at: what changed since the last plan.
public enum Evaluation: Sendable, Hashable, Codable {
    /// A manifest was applied or deleted.
    case application(String)
    /// One service was scaled or restarted, or its instances changed status.
    case service(ServiceKey)
    /// A node registered, went down, or started draining: capacity changed for every service.
    case node(String)
    /// Everything, as after a leader change.
    case all
}

/// One new instance: which slot of which service, on which node, with which ports.
public struct InstancePlacement: Sendable, Hashable, Codable {
    /// The service the instance belongs to.
    public var service: ServiceKey
    /// The replica slot it fills, 0..<replicas.
    public var index: Int
    /// The application revision the instance runs; the plan is refused if it is no longer current.
    public var revision: UInt64
    /// The chosen node.
    public var node: String
    /// Every port of the service's manifest, static ones at their number.
    public var ports: [AssignedPort]
    /// Instances stopped in the same step, and only if this placement is accepted
    /// (stop-before-start, when the rollout has no surge left). A node worker that holds one
    /// of them should stop it before starting this one: they may share a static port.
    public var replaces: [InstanceID]
    /// For people: why the instance is placed ("scale up", "replaces web.web.0-3: revision 2").
    public var reason: String

    /// A placement as the scheduler (or a test) builds it.
    public init(service: ServiceKey, index: Int, revision: UInt64, node: String, ports: [AssignedPort], replaces: [InstanceID] = [], reason: String) {
        self.service = service
        self.index = index
        self.revision = revision
        self.node = node
        self.ports = ports
        self.replaces = replaces
        self.reason = reason
    }
}

/// One instance to stop, and why.
public struct InstanceStop: Sendable, Hashable, Codable {
    /// The instance to stop.
    public var id: InstanceID
    /// For people: "scaled down to 2", "lost with node b".
    public var reason: String

    /// A stop with its reason.
    public init(id: InstanceID, reason: String) {
        self.id = id
        self.reason = reason
    }
}

/// Instances of a service the scheduler could not place, and why not.
public struct UnplacedInstances: Sendable, Hashable, Codable {
    /// The service short of instances.
    public var service: ServiceKey
    /// How many of its slots could not be filled for this reason.
    public var count: Int
    /// E.g. "no node satisfies node.os = windows", "insufficient memory on all 3 nodes".
    public var reason: String

    /// A reason with the number of slots it kept empty.
    public init(service: ServiceKey, count: Int, reason: String) {
        self.service = service
        self.count = count
        self.reason = reason
    }
}

/// The scheduler's answer to an evaluation, committed to the log as one entry.
///
/// The leader commits plans one at a time (Nomad's plan queue): each is computed from a
/// snapshot, then re-checked against the state it is committed to (see
/// `ClusterState.commitPlan`), because another plan or a node event may have landed between.
public struct Plan: Sendable, Hashable, Codable {
    /// The services this plan covers; their `unplaced` reasons are replaced by this plan's.
    public var evaluated: [ServiceKey]
    /// Stops applied first, whatever happens to the placements.
    public var stops: [InstanceStop]
    /// New instances, applied in order after the stops.
    public var placements: [InstancePlacement]
    /// Slots no node could take, and why, per evaluated service.
    public var unplaced: [UnplacedInstances]
    /// Steps of rollouts: progress, success, failure (applied after the instances).
    public var rollouts: [RolloutUpdate]
    /// Rollout replacements that have been ready for their `minHealthyTime`: they join the
    /// catalog's passing instances (applied before the stops).
    public var settled: [InstanceID]

    /// A plan as the scheduler (or a test) builds it.
    public init(
        evaluated: [ServiceKey] = [], stops: [InstanceStop] = [], placements: [InstancePlacement] = [], unplaced: [UnplacedInstances] = [],
        rollouts: [RolloutUpdate] = [], settled: [InstanceID] = []
    ) {
        self.evaluated = evaluated
        self.stops = stops
        self.placements = placements
        self.unplaced = unplaced
        self.rollouts = rollouts
        self.settled = settled
    }

    /// Whether committing it would change no instance (its unplaced reasons may still be news).
    public var changesNoInstance: Bool { stops.isEmpty && placements.isEmpty }

    /// Whether committing it would change nothing the leader decides: no instance, no rollout.
    public var decidesNothing: Bool { changesNoInstance && rollouts.isEmpty && settled.isEmpty }

    private enum CodingKeys: String, CodingKey { case evaluated, stops, placements, unplaced, rollouts, settled }

    /// Plans in logs written before rollouts were kept have none.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        evaluated = try container.decode([ServiceKey].self, forKey: .evaluated)
        stops = try container.decode([InstanceStop].self, forKey: .stops)
        placements = try container.decode([InstancePlacement].self, forKey: .placements)
        unplaced = try container.decode([UnplacedInstances].self, forKey: .unplaced)
        rollouts = try container.decodeIfPresent([RolloutUpdate].self, forKey: .rollouts) ?? []
        settled = try container.decodeIfPresent([InstanceID].self, forKey: .settled) ?? []
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(evaluated, forKey: .evaluated)
        try container.encode(stops, forKey: .stops)
        try container.encode(placements, forKey: .placements)
        try container.encode(unplaced, forKey: .unplaced)
        if !rollouts.isEmpty { try container.encode(rollouts, forKey: .rollouts) }
        if !settled.isEmpty { try container.encode(settled, forKey: .settled) }
    }
}
