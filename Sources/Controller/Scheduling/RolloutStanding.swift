import Manifest

/// Where one service stands in its application's running rollout, as the reconciler walks its
/// slots: how many are updated, whether every one is, and the first reason it cannot go on.
struct RolloutStanding {
    let key: ServiceKey
    let rollout: Rollout
    let service: Service
    /// Slots whose current instance counts as updated.
    private(set) var updated = 0
    /// A slot is not updated, or still has an outdated instance beside its new one.
    private(set) var incomplete = false
    /// Why the rollout cannot go on, for people; the first found.
    private(set) var failure: String?
    /// Why the scheduler could not place some of the service's instances at its last pass: the
    /// usual reason for a stall, so a missed `progressDeadline` names it.
    let unplaced: [UnplacedInstances]
    /// Instances of the rollout not updated yet, with when their `healthyDeadline` ends.
    private var pending: [(instance: InstanceRecord, slot: Int, deadline: Timestamp)] = []

    init(key: ServiceKey, rollout: Rollout, service: Service, unplaced: [UnplacedInstances]) {
        self.key = key
        self.rollout = rollout
        self.service = service
        self.unplaced = unplaced
    }

    /// The current instance kept in `slot`; `outdated`: an older one is still there beside it.
    mutating func record(_ instance: InstanceRecord, slot: Int, updated isUpdated: Bool, outdated: Bool) {
        if isUpdated {
            updated += 1
            if outdated { incomplete = true }
            return
        }
        incomplete = true
        // A server that gave up restarting is not coming: a batch job's failed run is done.
        if instance.status == .failed, service.restart.policy != .never {
            failure = failure ?? "\(name(slot)) failed\(Self.detail(instance))"
            return
        }
        // Created by this rollout and settled (done for minHealthyTime) before it failed a check:
        // it met its healthyDeadline, which is not enforced again (Nomad keeps an allocation's
        // deployment health once set). The rollout waits for it; progressDeadline still holds.
        if instance.createdAt >= rollout.startedAt, !instance.awaitsMinHealthyTime,
            instance.events.contains(where: { Reconciler.isDone($0.status, service) })
        {
            return
        }
        // Counted from the rollout's start for an instance it did not create (carried over
        // from a superseded rollout): its deadline is this rollout's to enforce. A pause does
        // not count against it.
        let since = max(instance.createdAt, rollout.resumedAt ?? rollout.startedAt)
        pending.append((instance, slot, since.adding(service.update.healthyDeadline)))
    }

    /// A slot with no current instance (being placed, or outdated ones waiting their turn).
    mutating func slotWaiting() {
        incomplete = true
    }

    /// The service's part once every slot was recorded, with the deadlines applied at `now`
    /// (none without it).
    func finish(now: Timestamp?, canaries: (count: Int, updated: Int), revisit result: inout ReconcileResult) -> RolloutPart {
        RolloutPart(
            updated: updated, complete: !incomplete, failure: failure ?? missedDeadline(now: now, revisit: &result), canaries: canaries.count,
            canariesUpdated: canaries.updated, autoPromote: service.update.autoPromote)
    }

    private func missedDeadline(now: Timestamp?, revisit result: inout ReconcileResult) -> String? {
        guard let now, incomplete else { return nil }
        let deadlines = service.update
        for (instance, slot, deadline) in pending {
            if now >= deadline {
                return "\(name(slot)) not healthy after \(DurationText.formatRounded(deadlines.healthyDeadline)) (its healthyDeadline)\(Self.detail(instance))"
            }
            result.revisit(at: deadline)
        }
        // Canaries waiting for an operator are not a stall.
        if let canary = rollout.canary, canary.awaitingPromotion, !canary.promoted { return nil }
        let stalled = rollout.progressAt.adding(deadlines.progressDeadline)
        guard now < stalled else {
            let why = unplaced.map { "\($0.count) cannot be placed: \($0.reason)" }
            return "no instance of \(key.service) updated for \(DurationText.formatRounded(deadlines.progressDeadline)) (its progressDeadline)"
                + (why.isEmpty ? "" : "; " + why.joined(separator: "; "))
        }
        result.revisit(at: stalled)
        return nil
    }

    private func name(_ slot: Int) -> String { "\(key.service)[\(slot)]" }

    /// What says best why the instance is not updated: its latest event other than a placement,
    /// a launch or a pass (a restarting instance's last event is its relaunch, which says
    /// nothing; the one before says which check failed or how it exited), else its last event.
    private static func detail(_ instance: InstanceRecord) -> String {
        let telling = instance.events.last { ![.pending, .running, .healthy].contains($0.status) }
        guard let event = telling ?? instance.events.last else { return "" }
        return ": \(event.message)"
    }

}

/// One service's part in its application's running rollout, as one reconciliation found it.
struct RolloutPart: Sendable, Hashable {
    /// Slots whose current instance counts as updated.
    var updated: Int
    /// Every slot updated, no outdated instance left.
    var complete: Bool
    /// Why the rollout cannot go on.
    var failure: String?
    /// Canaries it runs before promotion (0 without, or once promoted), and how many of them
    /// count as updated.
    var canaries = 0
    var canariesUpdated = 0
    /// The service promotes its canaries by itself.
    var autoPromote = false

    /// The steps of each application's running rollout, from its services' parts: progress
    /// when more instances are updated, success when every service is complete, failure with
    /// the first reason found (services in name order). An application some of whose rolled
    /// services were not reconciled (an evaluation of one service) is left for a later pass.
    static func updates(_ state: ClusterState, _ parts: [ServiceKey: RolloutPart]) -> [RolloutUpdate] {
        var updates: [RolloutUpdate] = []
        for name in state.applications.keys.sorted() {
            guard let record = state.applications[name], let rollout = record.rollout, rollout.phase == .running else { continue }
            let found = rollout.services.filter { record.services[$0] != nil }.map { parts[ServiceKey(name, $0)] }
            guard found.allSatisfy({ $0 != nil }) else { continue }
            let services = found.compactMap { $0 }
            let change: RolloutUpdate.Change
            let canaryParts = services.filter { $0.canaries > 0 }
            if let failure = services.lazy.compactMap(\.failure).first {
                change = .failed(reason: failure)
            } else if !canaryParts.isEmpty, canaryParts.allSatisfy({ $0.canariesUpdated >= $0.canaries }),
                canaryParts.allSatisfy(\.autoPromote) || rollout.canary?.awaitingPromotion != true
            {
                change = canaryParts.allSatisfy(\.autoPromote) ? .promoted : .awaitingPromotion
            } else if services.allSatisfy(\.complete) {
                change = .succeeded
            } else {
                let updated = services.reduce(0) { $0 + $1.updated }
                guard updated > rollout.updated else { continue }
                change = .progressed(updated: updated)
            }
            updates.append(RolloutUpdate(
                application: name, startedIndex: rollout.startedIndex, change: change, replicas: record.replicas(of: rollout.services)))
        }
        return updates
    }
}

extension InstanceRecord {
    /// Since when the instance has been in its current status: the time of the first event of
    /// the latest run of events with that status. When the events kept all have it, the oldest
    /// kept: later than the truth, never earlier, so a minimum time is never cut short.
    var statusSince: Timestamp? {
        var since: Timestamp?
        for event in events.reversed() {
            guard event.status == status else { break }
            since = event.time
        }
        return since
    }
}
