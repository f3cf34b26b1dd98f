import Manifest

/// Turns an evaluation into a plan: the reconciler says which slots need instances and what
/// to stop, then each slot gets the best feasible node (Nomad's generic scheduler: feasibility
/// checks, then ranking, one placement at a time so each sees the ones before it).
///
/// Pure: the same state and evaluation always give the same plan. Nothing here reads a clock,
/// draws a random number or touches the state it was given.
public struct Scheduler: Sendable {
    /// The scheduler has no settings yet: port ranges belong to nodes, scoring is fixed.
    public init() {}

    /// At most this many placements go into one plan; the leader plans the rest on its next
    /// pass, right after this plan commits. A plan is one Raft entry that every server
    /// decodes and applies whole: 25,000 placements make about 4.2 MiB (35 ms on a 1 Gbit/s
    /// link), and instances start on their nodes while the rest is still being planned.
    /// Smaller plans cost more passes, each of which reconciles every service (cluster-bench:
    /// 10,000 per plan placed 7,600 instances/s through three servers).
    public static let defaultPlacementLimit = 25_000

    /// Reconciles what `evaluation` names and places what it asks for, up to `placementLimit`.
    public func schedule(_ state: ClusterState, for evaluation: Evaluation, at now: Timestamp? = nil, placementLimit: Int = .max) -> Plan {
        place(Reconciler.reconcile(state, for: evaluation, at: now), in: state, placementLimit: placementLimit)
    }

    /// Chooses nodes for the reconciler's requests, in order, until `placementLimit` are
    /// placed. Services with requests left over are not counted as evaluated, so the plan
    /// leaves their unplaced reasons as they were.
    public func place(_ decisions: ReconcileResult, in state: ClusterState, placementLimit: Int = .max) -> Plan {
        var pass = SchedulingPass(state: state)
        var plan = Plan(evaluated: decisions.evaluated, stops: decisions.stops, rollouts: decisions.rollouts, settled: decisions.settled)
        for stop in decisions.stops {
            pass.release(stop.id)
        }
        var failures: [ServiceKey: [(reason: String, count: Int)]] = [:]
        var deferred: Set<ServiceKey> = []
        for request in decisions.requests {
            guard plan.placements.count < placementLimit else {
                deferred.insert(request.service)
                continue
            }
            switch pass.place(request) {
            case .success(let placement):
                plan.placements.append(placement)
            case .failure(let unplaced):
                var reasons = failures[request.service] ?? []
                if let existing = reasons.firstIndex(where: { $0.reason == unplaced.reason }) {
                    reasons[existing].count += 1
                } else {
                    reasons.append((unplaced.reason, 1))
                }
                failures[request.service] = reasons
            }
        }
        plan.evaluated.removeAll { deferred.contains($0) }
        for key in failures.keys.sorted() where !deferred.contains(key) {
            for failure in failures[key] ?? [] {
                plan.unplaced.append(UnplacedInstances(service: key, count: failure.count, reason: failure.reason))
            }
        }
        return plan
    }
}

/// Why a slot could not be filled, already worded for people.
struct Unplaceable: Error {
    var reason: String
}

/// One scheduling run's working state: usage updated by every decision made so far.
///
/// Which nodes a placement examines: on a cluster of at most ``examinesEveryNodeUpTo`` nodes,
/// all of them. On a larger one, as Nomad's generic scheduler does (its LimitIterator): nodes
/// are walked from a cursor that moves on with every placement, and the walk stops once it
/// has found ``candidateLimit(nodeCount:)`` feasible nodes, about log2 of the node count; the
/// best of those wins. Infeasible nodes do not count, so a service that fits few nodes still
/// finds them, and one that fits none has looked at every node when it says why. Services
/// with a `spread` examine every node: a spread weighs the whole cluster. Examining every
/// node for every placement is what made 100,000 placements over 1,000 nodes take minutes
/// (issue 13's figure); the cursor spreads consecutive placements over the cluster the way
/// the full scan's anti-affinity did.
struct SchedulingPass {
    let state: ClusterState
    let nodes: [NodeRecord]
    var usage: ClusterUsage
    var matcher = ConstraintMatcher()
    /// Where the next placement's walk over `nodes` starts.
    private var cursor: Int

    /// Up to this many nodes, every placement examines every node.
    static let examinesEveryNodeUpTo = 64

    /// How many feasible nodes a placement compares on a large cluster: ⌈log2 n⌉, at least 2
    /// (Nomad's limit for service jobs).
    static func candidateLimit(nodeCount: Int) -> Int {
        guard nodeCount > examinesEveryNodeUpTo else { return nodeCount }
        return max(2, Int.bitWidth - (nodeCount - 1).leadingZeroBitCount)
    }

    init(state: ClusterState) {
        self.state = state
        self.nodes = state.nodes.values.sorted { $0.name < $1.name }
        self.usage = ClusterUsage(state)
        // Where the walk starts differs from one state to the next, so that passes of a few
        // placements each do not all favour the first nodes by name, and is still a function
        // of the state: the same state gives the same plan.
        cursor = nodes.isEmpty ? 0 : Int(Self.mix(state.lastChangeIndex) % UInt64(nodes.count))
    }

    /// SplitMix64's finalizer: consecutive indexes land far apart.
    private static func mix(_ value: UInt64) -> UInt64 {
        var z = value &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func release(_ id: InstanceID) {
        guard let instance = state.instances[id], instance.isLive else { return }
        usage.remove(instance.reservation, on: instance.node)
    }

    mutating func place(_ request: PlacementRequest) -> Result<InstancePlacement, Unplaceable> {
        guard let application = state.applications[request.service.application],
            let service = application.service(named: request.service.service)
        else { return .failure(Unplaceable(reason: "service \(request.service) no longer exists")) }
        let first = attempt(request, service, freeing: request.replaces)
        if case .failure = first, !request.surgesBeside.isEmpty, !request.besideOnly {
            // No room beside the old instances: replace them instead, as with no surge at all.
            var fallback = request
            fallback.replaces = request.surgesBeside
            let replaced = request.reason.hasPrefix("will replace ") ? String(request.reason.dropFirst("will replace ".count)) : request.reason
            fallback.reason = "replaces \(replaced); no room to surge"
            return attempt(fallback, service, freeing: fallback.replaces)
        }
        return first
    }

    /// Frees what `freeing` holds, then picks a node; on failure puts back what it freed.
    /// (Changing the usage in place, not a copy: a copy of every node's usage per placement
    /// cost more than the placement.)
    private mutating func attempt(_ request: PlacementRequest, _ service: Service, freeing: [InstanceID]) -> Result<InstancePlacement, Unplaceable> {
        let freed = freeing.compactMap { id in state.instances[id].flatMap { $0.isLive ? $0 : nil } }
        for instance in freed { usage.remove(instance.reservation, on: instance.node) }
        let staticPorts = service.network.ports.compactMap { port in
            port.number.map { AssignedPort(name: port.name, number: $0, protocol: port.protocol) }
        }
        let needs = Reservation(
            service: request.service, cpuMillicores: service.resources.reservedCPUMillicores,
            memoryBytes: service.resources.reservedMemory.bytes, ports: staticPorts)
        let spread = SpreadCounts(service, key: request.service, nodes: nodes, usage: usage)
        let limit = service.placement.spread.isEmpty ? Self.candidateLimit(nodeCount: nodes.count) : nodes.count
        let portKey = "\(request.service)/\(request.index)/\(request.revision)"
        var best: (score: NodeScore, node: NodeRecord, ports: [AssignedPort])?
        var problems: [(position: Int, problem: Infeasibility)] = []
        var feasible = 0
        var examined = 0
        while examined < nodes.count && feasible < limit {
            let position = (cursor + examined) % nodes.count
            let node = nodes[position]
            examined += 1
            let nodeUsage = usage[node.name]
            if let problem = Feasibility.check(service, needs: needs, on: node, usage: nodeUsage, matcher: &matcher) {
                problems.append((position, problem))
                continue
            }
            guard let ports = PortAllocator.assign(service.network.ports, key: portKey, range: node.registration.dynamicPorts, usage: nodeUsage) else {
                problems.append((position, .noFreeDynamicPort(node.registration.dynamicPorts)))
                continue
            }
            feasible += 1
            let score = NodeScore(node: node, reservation: needs, usage: nodeUsage, spread: spread)
            if best.map({ score < $0.score }) ?? true { best = (score, node, ports) }
        }
        if !nodes.isEmpty { cursor = (cursor + examined) % nodes.count }
        guard let best else {
            for instance in freed { usage.add(instance.reservation, on: instance.node) }
            // Every node was examined; described in node order, wherever the walk began.
            return .failure(Unplaceable(reason: UnplacedReason.describe(problems.sorted { $0.position < $1.position }.map(\.problem))))
        }
        var reservation = needs
        reservation.ports = best.ports
        usage.add(reservation, on: best.node.name)
        return .success(
            InstancePlacement(
                service: request.service, index: request.index, revision: request.revision, node: best.node.name, ports: best.ports,
                replaces: freeing, reason: request.reason))
    }
}
