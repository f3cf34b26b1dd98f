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

    /// Reconciles what `evaluation` names and places what it asks for.
    public func schedule(_ state: ClusterState, for evaluation: Evaluation, at now: Timestamp? = nil) -> Plan {
        place(Reconciler.reconcile(state, for: evaluation, at: now), in: state)
    }

    /// Chooses nodes for the reconciler's requests.
    public func place(_ decisions: ReconcileResult, in state: ClusterState) -> Plan {
        var pass = SchedulingPass(state: state)
        var plan = Plan(evaluated: decisions.evaluated, stops: decisions.stops)
        for stop in decisions.stops {
            pass.release(stop.id)
        }
        var failures: [ServiceKey: [(reason: String, count: Int)]] = [:]
        for request in decisions.requests {
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
        for key in failures.keys.sorted() {
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
struct SchedulingPass {
    let state: ClusterState
    let nodes: [NodeRecord]
    var usage: ClusterUsage
    var matcher = ConstraintMatcher()

    init(state: ClusterState) {
        self.state = state
        self.nodes = state.nodes.values.sorted { $0.name < $1.name }
        self.usage = ClusterUsage(state)
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
        if case .failure = first, !request.surgesBeside.isEmpty {
            // No room beside the old instances: replace them instead, as with no surge at all.
            var fallback = request
            fallback.replaces = request.surgesBeside
            let replaced = request.reason.hasPrefix("will replace ") ? String(request.reason.dropFirst("will replace ".count)) : request.reason
            fallback.reason = "replaces \(replaced); no room to surge"
            return attempt(fallback, service, freeing: fallback.replaces)
        }
        return first
    }

    private mutating func attempt(_ request: PlacementRequest, _ service: Service, freeing: [InstanceID]) -> Result<InstancePlacement, Unplaceable> {
        var trial = usage
        for id in freeing {
            if let instance = state.instances[id], instance.isLive { trial.remove(instance.reservation, on: instance.node) }
        }
        let staticPorts = service.network.ports.compactMap { port in
            port.number.map { AssignedPort(name: port.name, number: $0, protocol: port.protocol) }
        }
        let needs = Reservation(
            service: request.service, cpuMillicores: service.resources.reservedCPUMillicores,
            memoryBytes: service.resources.reservedMemory.bytes, ports: staticPorts)
        let spread = SpreadCounts(service, key: request.service, nodes: nodes, usage: trial)
        var best: (score: NodeScore, node: NodeRecord, ports: [AssignedPort])?
        var problems: [Infeasibility] = []
        for node in nodes {
            let nodeUsage = trial[node.name]
            if let problem = Feasibility.check(service, needs: needs, on: node, usage: nodeUsage, matcher: &matcher) {
                problems.append(problem)
                continue
            }
            let key = "\(request.service)/\(request.index)/\(request.revision)"
            guard let ports = PortAllocator.assign(service.network.ports, key: key, range: node.registration.dynamicPorts, usage: nodeUsage) else {
                problems.append(.noFreeDynamicPort(node.registration.dynamicPorts))
                continue
            }
            let score = NodeScore(node: node, reservation: needs, usage: nodeUsage, spread: spread)
            if best.map({ score < $0.score }) ?? true { best = (score, node, ports) }
        }
        guard let best else { return .failure(Unplaceable(reason: UnplacedReason.describe(problems))) }
        var reservation = needs
        reservation.ports = best.ports
        trial.add(reservation, on: best.node.name)
        usage = trial
        return .success(
            InstancePlacement(
                service: request.service, index: request.index, revision: request.revision, node: best.node.name, ports: best.ports,
                replaces: freeing, reason: request.reason))
    }
}
