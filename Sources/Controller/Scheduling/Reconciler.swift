import Manifest

/// A slot of a service that needs a new instance, before a node is chosen for it.
public struct PlacementRequest: Sendable, Hashable {
    /// The service short of an instance.
    public var service: ServiceKey
    /// The slot to fill.
    public var index: Int
    /// The application revision the new instance runs: always the current one.
    public var revision: UInt64
    /// Stopped when the new instance is placed, never before (stop-before-start).
    public var replaces: [InstanceID]
    /// Outdated instances the new one will later replace, left running beside it while the
    /// rollout has surge to spare (start-before-stop). If no node can take the new instance
    /// beside them, the scheduler replaces them instead, rather than stalling the rollout.
    public var surgesBeside: [InstanceID]
    /// For people: why the slot needs an instance.
    public var reason: String
    /// A canary: it runs beside the old instances or waits for room; it never replaces them,
    /// which would cut capacity before anyone promoted it.
    public var besideOnly = false
}

/// What the desired state asks for, before any node is chosen.
public struct ReconcileResult: Sendable, Hashable {
    /// The services looked at, sorted.
    public var evaluated: [ServiceKey] = []
    /// Instances to stop whatever the placements do: lost, above the count, replaced.
    public var stops: [InstanceStop] = []
    /// Slots to fill, by service and slot.
    public var requests: [PlacementRequest] = []
    /// The earliest time at which reconciling the same state would decide differently: a
    /// lost instance's grace ends, or a draining node's deadline passes. Nil when only a
    /// change of the state can change the decisions (and without `now`).
    public var revisitAt: Timestamp?
    /// Steps of running rollouts: more instances updated, success, failure.
    public var rollouts: [RolloutUpdate] = []
    /// Rollout replacements now ready for their `minHealthyTime`: they join the catalog.
    public var settled: [InstanceID] = []
    /// Each reconciled service's part in its application's running rollout.
    var rolloutParts: [ServiceKey: RolloutPart] = [:]

    mutating func revisit(at time: Timestamp) {
        revisitAt = min(revisitAt ?? time, time)
    }
}

/// Compares what applications want (each service's current revision and count) with the
/// instances there are, and says what to stop and which slots to fill.
///
/// - Missing slots are filled at once; slots at or above `replicas` are stopped, highest first.
/// - Instances lost with their node are stopped (forgotten) and their slots filled once their
///   service's `disconnect.lostAfter` has passed since they were lost (at once without `now`).
/// - Outdated instances (older revision, created before a restart, or on a draining node) are
///   replaced by a rolling update: at most `update.maxParallel` slots are in progress (a new
///   instance that is not yet ready), and new instances start beside old ones while the
///   service stays within `replicas + update.maxSurge` live instances, else replace them.
///   An old instance stops once its replacement is ready.
/// - Instances that ended (completed batch jobs, `failed` after their restart policy gave
///   up) are left alone while current: rescheduling failed instances is not done here.
///
/// - A new instance counts as updated once ready for its service's `update.minHealthyTime`
///   (with `now`; without it, once ready): only then is the old one stopped.
/// - The application's running rollout (``Rollout``) gets its steps: progress, success, and
///   failure when an instance of it fails or misses its `healthyDeadline`, or none is updated
///   for a `progressDeadline` (deadlines only with `now`). Once it failed, or while it is
///   paused, outdated instances are no longer replaced; those on a draining or down node
///   still are.
///
/// - With `update.canaries`, a rollout first runs that many new instances beside the old ones
///   of the first slots and replaces nothing else until the canaries are promoted (by an
///   operator, or by `autoPromote` once they all count as updated).
public enum Reconciler {
    /// What to stop and which slots to fill for the services `evaluation` names, plus the
    /// stop of any instance whose service no longer exists. `now` (the leader's clock) decides
    /// which lost instances are past their service's grace.
    public static func reconcile(_ state: ClusterState, for evaluation: Evaluation, at now: Timestamp? = nil) -> ReconcileResult {
        var result = ReconcileResult()
        // One walk over the instances, grouped by service: asking the state for each
        // service's instances walks all of them once per service.
        // Sorted as small keys, then looked up: sorting the records themselves moved (and
        // retained) whole records at every step of the sort.
        var byService: [ServiceKey: [SlotOrder]] = [:]
        var orphans: [InstanceID] = []
        for instance in state.instances.values where instance.desiredState == .run && isInScope(instance.service, evaluation) {
            if state.applications[instance.service.application]?.services[instance.service.service] == nil {
                orphans.append(instance.id)
            } else {
                byService[instance.service, default: []].append(SlotOrder(slot: instance.index, created: instance.createdIndex, id: instance.id))
            }
        }
        for key in services(in: state, for: evaluation) {
            let instances = (byService[key] ?? []).sorted().compactMap { state.instances[$0.id] }
            ServiceReconciliation(state: state, key: key, instances: instances, now: now).run(into: &result)
        }
        for id in orphans.sorted() {
            guard let instance = state.instances[id] else { continue }
            result.stops.append(InstanceStop(id: id, reason: "service \(instance.service) no longer exists"))
        }
        result.rollouts = RolloutPart.updates(state, result.rolloutParts)
        return result
    }

    static func services(in state: ClusterState, for evaluation: Evaluation) -> [ServiceKey] {
        let all = state.applications.values.flatMap { record in record.services.keys.map { ServiceKey(record.name, $0) } }
        return all.filter { isInScope($0, evaluation) }.sorted()
    }

    /// A node event can make room for any service, so it looks at all of them.
    static func isInScope(_ key: ServiceKey, _ evaluation: Evaluation) -> Bool {
        switch evaluation {
        case .all, .node: true
        case .application(let name): key.application == name
        case .service(let service): key == service
        }
    }

    /// Whether a current instance has finished starting: a rollout may stop what it replaces.
    /// A batch job's run is done once it ended, however it ended: it replaces the previous
    /// run, not a server that must stay available. A service's failed instance is not done:
    /// the old instance it was to replace keeps serving, and the rollout stops there.
    static func isDone(_ instance: InstanceRecord, _ service: Service) -> Bool {
        isDone(instance.status, service)
    }

    static func isDone(_ status: InstanceStatus, _ service: Service) -> Bool {
        switch status {
        case .healthy, .completed: true
        case .running: service.readinessMode == .exec
        case .failed, .stopped: service.restart.policy == .never
        case .pending, .starting, .unhealthy, .lost: false
        }
    }
}

/// Where an instance sorts among its service's: by slot, then by age (as
/// ``ClusterState/instances(of:)``).
private struct SlotOrder: Comparable {
    var slot: Int
    var created: UInt64
    var id: InstanceID

    static func < (a: SlotOrder, b: SlotOrder) -> Bool { (a.slot, a.created, a.id) < (b.slot, b.created, b.id) }
}

/// The reconciliation of one service, step by step.
private struct ServiceReconciliation {
    let state: ClusterState
    let key: ServiceKey
    /// The service's instances wanted running, by slot and then by age.
    let instances: [InstanceRecord]
    let now: Timestamp?

    func run(into result: inout ReconcileResult) {
        guard let application = state.applications[key.application], let record = application.services[key.service],
            let service = application.service(named: key.service)
        else { return }
        result.evaluated.append(key)
        let replicas = record.replicas
        let revision = application.currentRevision
        var stops: [InstanceStop] = []
        var requests: [PlacementRequest] = []
        var slots: [Int: [InstanceRecord]] = [:]
        /// Why a slot is to be filled again at once, for slots whose instance was taken away.
        var takenFromSlot: [Int: String] = [:]
        var extras: [InstanceRecord] = []
        var withinGrace: Set<InstanceID> = []
        let rollout = application.rollout.flatMap { $0.services.contains(key.service) ? $0 : nil }
        var standing = rollout.flatMap { $0.phase == .running ? RolloutStanding(key: key, rollout: $0, service: service, unplaced: record.unplaced) : nil }
        // While the rollout's canaries run, the first `canaries` slots get a new instance beside
        // their old one, which keeps serving; nothing else is replaced until they are promoted.
        let canaries = rollout.map { $0.phase.isFinal ? 0 : min($0.canaries(of: key.service), replicas) } ?? 0
        var canariesUpdated = 0

        for instance in instances {
            if let now, let deadline = state.drainDeadline(for: instance), now < deadline { result.revisit(at: deadline) }
            if state.isLost(instance), let now, let since = state.lostSince(instance), now < since.adding(service.disconnect.lostAfter) {
                // Within its grace it keeps its slot: its node may come back with it running.
                result.revisit(at: since.adding(service.disconnect.lostAfter))
                if instance.index < replicas {
                    slots[instance.index, default: []].append(instance)
                    withinGrace.insert(instance.id)
                } else {
                    extras.append(instance)
                }
            } else if state.isLost(instance) {
                stops.append(InstanceStop(id: instance.id, reason: "lost with node \(instance.node)"))
                if instance.index < replicas { takenFromSlot[instance.index] = "replaces \(instance.id), lost with node \(instance.node)" }
            } else if state.drainDeadlinePassed(for: instance, at: now) {
                stops.append(InstanceStop(id: instance.id, reason: "the drain deadline of node \(instance.node) passed"))
                if instance.index < replicas { takenFromSlot[instance.index] = "replaces \(instance.id), past node \(instance.node)'s drain deadline" }
            } else if instance.index >= replicas {
                extras.append(instance)
            } else {
                slots[instance.index, default: []].append(instance)
            }
        }
        for instance in extras.sorted(by: { ($0.index, $0.createdIndex) > ($1.index, $1.createdIndex) }) {
            stops.append(InstanceStop(id: instance.id, reason: "scaled down to \(replicas)"))
        }

        var inProgress = 0
        var waiting: [(slot: Int, outdated: [InstanceRecord])] = []
        var live = 0
        for slot in 0..<replicas {
            var here = slots[slot] ?? []
            if here.contains(where: { withinGrace.contains($0.id) }) {
                // Held for a lost instance: not replaced, not rolled, until its grace ends.
                let held = here.filter { withinGrace.contains($0.id) }
                here.removeAll { withinGrace.contains($0.id) }
                if here.isEmpty {
                    live += 1
                    // The rollout counts it as it last stood: updated only if it was, and
                    // otherwise waits for it (its healthyDeadline still runs).
                    if let current = held.first(where: state.isCurrent) {
                        standing?.record(current, slot: slot, updated: isUpdated(current, service, revisit: &result), outdated: false)
                    } else {
                        standing?.slotWaiting()
                    }
                    continue
                }
            }
            var current = here.filter(state.isCurrent)
            var outdated: [InstanceRecord] = []
            for instance in here where !state.isCurrent(instance) {
                // An outdated instance that has ended serves nobody: nothing to roll.
                if instance.status.isTerminal {
                    stops.append(InstanceStop(id: instance.id, reason: "outdated (\(outdatedReason(instance))) and ended"))
                } else {
                    outdated.append(instance)
                    // A replacement overtaken by a newer revision still serves until replaced.
                    if instance.awaitsMinHealthyTime, isUpdated(instance, service, revisit: &result) { result.settled.append(instance.id) }
                }
            }
            // Two current instances in one slot come from a plan that raced another; keep the
            // one furthest along (then the oldest) and stop the rest.
            current.sort { (Reconciler.isDone($0, service) ? 0 : 1, $0.createdIndex, $0.id) < (Reconciler.isDone($1, service) ? 0 : 1, $1.createdIndex, $1.id) }
            for duplicate in current.dropFirst() {
                stops.append(InstanceStop(id: duplicate.id, reason: "duplicate of \(current[0].id) in slot \(slot)"))
            }
            if let kept = current.first {
                live += kept.status.isTerminal ? 0 : 1
                let updated = isUpdated(kept, service, revisit: &result)
                standing?.record(kept, slot: slot, updated: updated, outdated: !outdated.isEmpty)
                if updated, slot < canaries { canariesUpdated += 1 }
                if updated, kept.awaitsMinHealthyTime { result.settled.append(kept.id) }
                if updated, canaries > 0, !outdated.isEmpty {
                    live += outdated.count
                } else if updated {
                    for old in outdated { stops.append(InstanceStop(id: old.id, reason: "replaced by \(kept.id)")) }
                } else {
                    inProgress += 1
                    live += outdated.count
                }
            } else if !outdated.isEmpty {
                live += outdated.count
                standing?.slotWaiting()
                waiting.append((slot, outdated))
            } else {
                standing?.slotWaiting()
                let reason = takenFromSlot[slot] ?? "slot \(slot) has no instance"
                requests.append(PlacementRequest(service: key, index: slot, revision: revision, replaces: [], surgesBeside: [], reason: reason))
                live += 1
            }
        }

        let part = standing?.finish(now: now, canaries: (canaries, canariesUpdated), revisit: &result)
        if let part { result.rolloutParts[key] = part }
        // A failed or paused rollout (or one failing in this pass) replaces no more: the outdated
        // instances keep serving. Those on a node that is draining or down still move.
        if rollout?.phase == .failed || rollout?.phase == .paused || part?.failure != nil { waiting.removeAll { $0.outdated.allSatisfy(state.isOnKeepingNode) } }
        let update = service.update
        if canaries > 0 {
            for (slot, outdated) in waiting where slot < canaries {
                requests.append(PlacementRequest(
                    service: key, index: slot, revision: revision, replaces: [], surgesBeside: outdated.map(\.id),
                    reason: "canary beside \(describe(outdated))", besideOnly: true))
                live += 1
            }
            // Until promotion only instances that must move (a draining or down node) are replaced.
            waiting.removeAll { $0.slot < canaries || $0.outdated.allSatisfy(state.isOnKeepingNode) }
        }
        for (slot, outdated) in waiting.prefix(max(0, update.maxParallel - inProgress)) {
            let ids = outdated.map(\.id)
            let why = describe(outdated)
            if live + 1 <= replicas + update.maxSurge {
                requests.append(PlacementRequest(service: key, index: slot, revision: revision, replaces: [], surgesBeside: ids, reason: "will replace \(why)"))
                live += 1
            } else {
                requests.append(PlacementRequest(service: key, index: slot, revision: revision, replaces: ids, surgesBeside: [], reason: "replaces \(why)"))
                live += 1 - outdated.count
            }
        }
        result.stops += stops
        result.requests += requests
    }

    /// Whether a current instance counts as updated: done starting, and (for a server) ready
    /// for the service's `minHealthyTime`, measured from the event that made it ready.
    private func isUpdated(_ instance: InstanceRecord, _ service: Service, revisit result: inout ReconcileResult) -> Bool {
        guard Reconciler.isDone(instance, service) else { return false }
        guard let now, instance.status == .healthy || instance.status == .running, let since = instance.statusSince else { return true }
        let settled = since.adding(service.update.minHealthyTime)
        if now < settled {
            result.revisit(at: settled)
            return false
        }
        return true
    }

    /// The outdated instances of a slot and why they are, for a placement's reason.
    private func describe(_ outdated: [InstanceRecord]) -> String {
        "\(outdated.map(\.id).joined(separator: ", ")) (\(outdatedReason(outdated[0])))"
    }

    private func outdatedReason(_ instance: InstanceRecord) -> String {
        guard let application = state.applications[key.application] else { return "application deleted" }
        if instance.revision != application.currentRevision { return "revision \(instance.revision), now \(application.currentRevision)" }
        if let node = state.nodes[instance.node], node.status != .ready { return "node \(node.name) is \(node.status.rawValue)" }
        if let service = application.services[key.service], instance.createdIndex < service.keyChangeIndex, instance.createdIndex >= service.restartIndex {
            return "a key it reads changed"
        }
        return "restarted"
    }
}
