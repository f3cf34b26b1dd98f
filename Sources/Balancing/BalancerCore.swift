/// The balancer's state and every decision it makes, without locks, clocks or I/O: time and
/// randomness are inputs (the current instant, a seeded generator), so one seed and one
/// sequence of calls replay exactly. `Balancer` wraps it in a mutex.
struct BalancerCore: Sendable {
    let configuration: BalancerConfiguration
    private(set) var slots: [BackendSlot] = []
    private var indexByID: [String: Int] = [:]
    /// Backends that left the set with requests still in flight, by id. One that comes back (an
    /// instance that failed its health check and passes again) comes back with them counted, so
    /// that `least-outstanding` and the load bound do not take it for idle while its earlier
    /// connections drain. Dropped once its last request finishes.
    private var departed: [String: BackendSlot] = [:]
    /// Slot indexes a pick may choose, ascending: those not ejected, or all in panic mode.
    private(set) var eligible: [Int] = []
    /// Every backend is ejected, so picks go to all of them.
    private(set) var isPanicking = false
    /// Requests in flight on eligible backends: the load the bounded-load capacity divides.
    private var eligibleOutstanding = 0
    private var ejectedCount = 0
    /// The earliest end of an ejection, to return backends without scanning on every pick.
    private var nextReturn: ContinuousClock.Instant?
    private var nextIncarnation: UInt64 = 1
    private var pickSequence: UInt64 = 0
    private var random: SplitMix64

    private var roundRobin = RoundRobinCursor()
    private var weighted = WeightedSchedule()
    private var leastOutstanding = LeastOutstandingQueue()
    private var ring = HashRing()

    init(configuration: BalancerConfiguration, seed: UInt64) {
        self.configuration = configuration
        self.random = SplitMix64(seed: seed)
    }

    // MARK: Picking

    /// Chooses a backend and counts a request in flight on it; nil when the set is empty.
    /// `keyHash` matters to `consistent-hash` only; without one, it hashes a random point,
    /// which spreads keyless requests like `random` while still honouring the load bound.
    /// `excluded`: ids a retry must not get again (those that just failed it); nil when every
    /// eligible backend is among them.
    mutating func pick(keyHash: UInt64?, excluding excluded: Set<String> = [], now: ContinuousClock.Instant) -> (SlotReference, Backend)? {
        returnDueBackends(now: now)
        let chosen = excluded.isEmpty ? choose(keyHash: keyHash) : choose(keyHash: keyHash, excluding: excluded)
        guard let index = chosen else { return nil }
        pickSequence += 1
        slots[index].outstanding += 1
        slots[index].lastPickSequence = pickSequence
        eligibleOutstanding += 1  // every strategy picks among the eligible
        if configuration.strategy == .leastOutstanding { leastOutstanding.changed(index, slots: slots) }
        let slot = slots[index]
        return (SlotReference(index: index, incarnation: slot.incarnation, id: slot.backend.id), slot.backend)
    }

    private mutating func choose(keyHash: UInt64?) -> Int? {
        switch configuration.strategy {
        case .roundRobin:
            return roundRobin.pick(from: eligible)
        case .random:
            // Uniform: Swift's `next(upperBound:)` is Lemire's unbiased bounded draw.
            return eligible.isEmpty ? nil : eligible[Int(random.next(upperBound: UInt64(eligible.count)))]
        case .weighted:
            return weighted.next(slots: &slots)
        case .leastOutstanding:
            return leastOutstanding.first
        case .powerOfTwoChoices:
            return PowerOfTwoChoices.pick(from: eligible, slots: slots, using: &random)
        case .consistentHash:
            return ring.owner(forKeyHash: keyHash ?? random.next(), slots: slots, capacity: boundedLoadCapacity())
        }
    }

    /// A retry's choice: the strategy's own among the eligible backends not excluded, O(n)
    /// (retries are rare next to first picks). `consistent-hash` walks on from the key's home
    /// to the next owner, so that a key keeps one fallback; past the load bound if the only
    /// backends under it are excluded.
    private mutating func choose(keyHash: UInt64?, excluding excluded: Set<String>) -> Int? {
        let candidates = eligible.filter { !excluded.contains(slots[$0].backend.id) }
        guard !candidates.isEmpty else { return nil }
        switch configuration.strategy {
        case .roundRobin:
            return roundRobin.pick(from: candidates)
        case .random:
            return candidates[Int(random.next(upperBound: UInt64(candidates.count)))]
        case .weighted:
            return weighted.next(among: candidates, slots: &slots)
        case .leastOutstanding:
            return candidates.min { LeastOutstandingQueue.FewestOutstanding.precedes($0, $1, in: slots) }
        case .powerOfTwoChoices:
            return PowerOfTwoChoices.pick(from: candidates, slots: slots, using: &random)
        case .consistentHash:
            let point = keyHash ?? random.next()
            let skipped = Set(eligible).subtracting(candidates)
            return ring.owner(forKeyHash: point, slots: slots, capacity: boundedLoadCapacity(), skipping: skipped)
                ?? ring.owner(forKeyHash: point, slots: slots, capacity: nil, skipping: skipped)
        }
    }

    /// Mirrokni, Thorup and Zadimoghaddam's capacity for the request being placed:
    /// ceil(c × (in flight + 1) / eligible backends). Some backend is always below it, since
    /// the eligible backends together hold fewer than n × capacity requests.
    private func boundedLoadCapacity() -> Int? {
        guard let factor = configuration.boundedLoadFactor, !eligible.isEmpty else { return nil }
        return Int((factor * Double(eligibleOutstanding + 1) / Double(eligible.count)).rounded(.up))
    }

    // MARK: Requests ending and outcomes

    /// Ends a request: one fewer in flight. Does nothing if the backend has left the set
    /// (or left and came back: its requests were forgotten with it).
    mutating func finish(_ reference: SlotReference) {
        guard let index = resolve(reference) else {
            finishDeparted(reference)
            return
        }
        guard slots[index].outstanding > 0 else { return }
        slots[index].outstanding -= 1
        if slots[index].isEligible { eligibleOutstanding -= 1 }
        if configuration.strategy == .leastOutstanding { leastOutstanding.changed(index, slots: slots) }
    }

    private mutating func finishDeparted(_ reference: SlotReference) {
        guard var slot = departed[reference.id], slot.incarnation == reference.incarnation else { return }
        slot.outstanding -= 1
        departed[reference.id] = slot.outstanding > 0 ? slot : nil
    }

    /// Counts a success or a failure towards ejection.
    /// Returns whether this failure ejected the backend.
    mutating func record(success: Bool, for reference: SlotReference, now: ContinuousClock.Instant) -> Bool {
        guard let policy = configuration.outlierDetection else { return false }
        returnDueBackends(now: now)
        guard let index = resolve(reference) else { return false }
        if success {
            slots[index].outlier.recordSuccess()
            return false
        }
        guard slots[index].outlier.recordFailure(policy),
            ejectedCount < policy.maximumEjected(of: slots.count)
        else { return false }
        slots[index].outlier.eject(now: now, policy)
        ejectedCount += 1
        noteEjectionsChanged()
        return true
    }

    private func resolve(_ reference: SlotReference) -> Int? {
        // Fast path: no update moved the slot. Otherwise find it by id, and accept it only if
        // it is the same arrival of that id.
        if reference.index < slots.count, slots[reference.index].incarnation == reference.incarnation {
            return reference.index
        }
        guard let index = indexByID[reference.id], slots[index].incarnation == reference.incarnation
        else { return nil }
        return index
    }

    // MARK: Ejection ends

    /// Returns the backends whose ejection is over. O(1) unless one is due.
    private mutating func returnDueBackends(now: ContinuousClock.Instant) {
        guard let due = nextReturn, now >= due else { return }
        for index in slots.indices {
            _ = slots[index].outlier.returnIfDue(now: now)
        }
        noteEjectionsChanged()
    }

    /// Recounts ejections and recomputes who is eligible after an ejection, a return or an
    /// update. O(n log n), rare next to picks.
    private mutating func noteEjectionsChanged() {
        ejectedCount = 0
        nextReturn = nil
        for slot in slots {
            guard let until = slot.outlier.ejectedUntil else { continue }
            ejectedCount += 1
            nextReturn = min(nextReturn ?? until, until)
        }
        eligible = slots.indices.filter { !slots[$0].outlier.isEjected }
        isPanicking = eligible.isEmpty && !slots.isEmpty
        if isPanicking { eligible = Array(slots.indices) }
        eligibleOutstanding = 0
        for index in slots.indices { slots[index].isEligible = false }
        for index in eligible {
            slots[index].isEligible = true
            eligibleOutstanding += slots[index].outstanding
        }
        switch configuration.strategy {
        case .weighted: weighted.rebuild(eligible: eligible, slots: &slots)
        case .leastOutstanding: leastOutstanding.rebuild(eligible: eligible, slots: slots)
        case .roundRobin, .random, .powerOfTwoChoices, .consistentHash: break
        }
    }

    // MARK: Updates

    /// Replaces the set. A backend whose id stays keeps its requests in flight, its failure
    /// streak and ejection, its weighted pass and its round-robin turn. One that leaves is
    /// forgotten but for its requests in flight: back before they finish, it has them counted
    /// (and a clean record). All or nothing: an invalid set changes nothing.
    mutating func update(backends: [Backend]) throws(BalancingError) {
        let problems = Backend.problems(in: backends)
        guard problems.isEmpty else { throw .invalid(problems) }
        var newSlots: [BackendSlot] = []
        newSlots.reserveCapacity(backends.count)
        var newIndexByID: [String: Int] = [:]
        newIndexByID.reserveCapacity(backends.count)
        let staying = Set(backends.map(\.id))
        for slot in slots where slot.outstanding > 0 && !staying.contains(slot.backend.id) {
            departed[slot.backend.id] = slot
        }
        for backend in backends {
            if let old = indexByID[backend.id] {
                var slot = slots[old]
                slot.backend = backend
                newSlots.append(slot)
            } else if let left = departed.removeValue(forKey: backend.id) {
                var slot = BackendSlot(backend: backend, incarnation: left.incarnation)
                slot.outstanding = left.outstanding
                newSlots.append(slot)
            } else {
                newSlots.append(BackendSlot(backend: backend, incarnation: nextIncarnation))
                nextIncarnation += 1
            }
            newIndexByID[backend.id] = newSlots.count - 1
        }
        roundRobin.carry(from: slots, to: newIndexByID)
        slots = newSlots
        indexByID = newIndexByID
        noteEjectionsChanged()
        if configuration.strategy == .consistentHash {
            ring.rebuild(slots: slots, configuration: configuration)
        }
    }

    // MARK: Inspection

    func status() -> [BackendStatus] {
        slots.map {
            BackendStatus(
                backend: $0.backend, outstanding: $0.outstanding,
                consecutiveFailures: $0.outlier.consecutiveFailures,
                ejectedUntil: $0.outlier.ejectedUntil, ejections: $0.outlier.ejections)
        }
    }

    /// Ring points per backend id (`consistent-hash` only), for tests of proportionality.
    func ringPointCounts() -> [String: Int] {
        var counts: [String: Int] = [:]
        for owner in ring.owners { counts[slots[Int(owner)].backend.id, default: 0] += 1 }
        return counts
    }
}
