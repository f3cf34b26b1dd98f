import Manifest

/// A replica slot of a service.
private struct SlotKey: Hashable {
    var service: ServiceKey
    var index: Int
}

extension ClusterState {
    /// Applies a plan against the state as it is now, which may have moved since the plan was
    /// computed (another plan, a node down, a scale). Decision: apply what still fits, refuse
    /// the rest placement by placement, as Nomad's plan applier does per node (plan_apply.go,
    /// evaluatePlan): all-or-nothing would throw away good placements because of one stale
    /// node, and the reconciler retries whatever was refused on its next pass.
    ///
    /// Order: the plan's stops first (freeing what they held), then each placement in order,
    /// each seeing the ones accepted before it. A placement's `replaces` are stopped only when
    /// it is accepted, so a refused stop-before-start replacement leaves the old instance running.
    mutating func commitPlan(_ plan: Plan, at index: UInt64, time: Timestamp) -> CommandResult {
        var outcome = PlanOutcome()
        var usage = ClusterUsage(self)
        // Settled first: a replacement joins the catalog in the entry that stops what it replaces.
        var settledAny = false
        for id in plan.settled where instances[id]?.awaitsMinHealthyTime == true && instances[id]?.desiredState == .run {
            instances[id]?.awaitsMinHealthyTime = false
            instances[id]?.modifiedIndex = index
            settledAny = true
        }
        for stop in plan.stops {
            guard let instance = instances[stop.id], instance.desiredState == .run else { continue }
            if instance.isLive { usage.remove(instance.reservation, on: instance.node) }
            self.stop(stop.id, reason: stop.reason, at: index)
            outcome.stopped.append(stop.id)
        }
        var occupants: [SlotKey: [InstanceID]]
        let rolling: Set<SlotKey>
        (occupants, rolling) = slotOccupants()
        for placement in plan.placements {
            let slot = SlotKey(service: placement.service, index: placement.index)
            switch check(placement, occupants: occupants[slot] ?? [], usage: usage) {
            case .failure(let refusal):
                outcome.rejected.append(RejectedPlacement(placement: placement, reason: refusal.reason))
            case .success(let service):
                let id = "\(placement.service.application).\(placement.service.service).\(placement.index)-\(nextInstanceSerial)"
                nextInstanceSerial += 1
                for replaced in placement.replaces {
                    guard let instance = instances[replaced], instance.desiredState == .run else { continue }
                    if instance.isLive { usage.remove(instance.reservation, on: instance.node) }
                    stop(replaced, reason: "replaced by \(id)", at: index)
                    occupants[slot]?.removeAll { $0 == replaced }
                    outcome.stopped.append(replaced)
                }
                let instance = InstanceRecord(
                    id: id, service: placement.service, index: placement.index, revision: placement.revision, node: placement.node,
                    ports: placement.ports, reservedCPUMillicores: service.resources.reservedCPUMillicores,
                    reservedMemoryBytes: service.resources.reservedMemory.bytes, desiredState: .run, stopReason: nil, status: .pending,
                    exit: nil, events: [InstanceEvent(time: time, status: .pending, message: "placed on \(placement.node): \(placement.reason)")],
                    createdIndex: index, createdAt: time, modifiedIndex: index,
                    awaitsMinHealthyTime: !placement.replaces.isEmpty || rolling.contains(slot))
                setInstance(instance, id: id)
                usage.add(instance.reservation, on: instance.node)
                occupants[slot, default: []].append(id)
                outcome.placed.append(id)
            }
        }
        var changed = settledAny || !outcome.placed.isEmpty || !outcome.stopped.isEmpty
        for key in plan.evaluated {
            guard let record = applications[key.application]?.services[key.service] else { continue }
            let unplaced = plan.unplaced.filter { $0.service == key }
            if record.unplaced != unplaced {
                applications[key.application]?.services[key.service]?.unplaced = unplaced
                changed = true
            }
        }
        outcome.rollouts = applyRolloutUpdates(plan.rollouts, at: index, time: time)
        if !outcome.rollouts.isEmpty { changed = true }
        if changed { lastChangeIndex = index }
        return .planCommitted(outcome)
    }

    /// The live, current instances in each slot: a placement into an occupied slot comes from
    /// a plan computed before the slot was filled, and would make a duplicate. And the slots
    /// where an outdated instance runs: a new instance there replaces it, as a rollout does.
    private func slotOccupants() -> (current: [SlotKey: [InstanceID]], rolling: Set<SlotKey>) {
        var occupants: [SlotKey: [InstanceID]] = [:]
        var rolling: Set<SlotKey> = []
        for instance in instances.values where instance.isLive && !isLost(instance) {
            let slot = SlotKey(service: instance.service, index: instance.index)
            if isCurrent(instance) { occupants[slot, default: []].append(instance.id) } else { rolling.insert(slot) }
        }
        // Sorted, so that a refusal names the same occupant on every replica.
        return (occupants.mapValues { $0.sorted() }, rolling)
    }

    /// Whether a placement still holds; the service's manifest when it does.
    private func check(_ placement: InstancePlacement, occupants: [InstanceID], usage: ClusterUsage) -> Result<Service, Unplaceable> {
        let key = placement.service
        guard let application = applications[key.application] else { return .failure(Unplaceable(reason: "application \(key.application) no longer exists")) }
        guard let record = application.services[key.service], let service = application.service(named: key.service) else {
            return .failure(Unplaceable(reason: "service \(key) no longer exists"))
        }
        guard placement.revision == application.currentRevision else {
            return .failure(Unplaceable(reason: "revision \(placement.revision) is no longer current (now \(application.currentRevision))"))
        }
        guard placement.index >= 0, placement.index < record.replicas else {
            return .failure(Unplaceable(reason: "slot \(placement.index) is beyond the \(record.replicas) replicas wanted"))
        }
        let replaced = Set(placement.replaces)
        if placement.replaces.contains(where: { instances[$0].map { $0.service != key } ?? false }) {
            return .failure(Unplaceable(reason: "it replaces an instance of another service"))
        }
        if let occupant = occupants.first(where: { !replaced.contains($0) }) {
            return .failure(Unplaceable(reason: "slot \(placement.index) already has \(occupant)"))
        }
        guard let node = nodes[placement.node] else { return .failure(Unplaceable(reason: "node \(placement.node) is not registered")) }
        guard node.status == .ready else { return .failure(Unplaceable(reason: "node \(node.name) is \(node.status.rawValue)")) }
        if let problem = portMismatch(placement.ports, service.network.ports) { return .failure(Unplaceable(reason: problem)) }
        var nodeUsage = usage[node.name]
        for id in placement.replaces {
            if let instance = instances[id], instance.isLive, instance.node == node.name { nodeUsage.remove(instance.reservation) }
        }
        let reservation = Reservation(
            service: key, cpuMillicores: service.resources.reservedCPUMillicores, memoryBytes: service.resources.reservedMemory.bytes,
            ports: placement.ports)
        if let problem = Feasibility.fit(service, needs: reservation, on: node, usage: nodeUsage) {
            return .failure(Unplaceable(reason: "node \(node.name): \(problem.phrase)"))
        }
        return .success(service)
    }

    /// Whether the assigned ports are exactly the manifest's: every name once, static ones at
    /// their number, no number twice for one protocol.
    private func portMismatch(_ assigned: [AssignedPort], _ declared: [Port]) -> String? {
        guard assigned.count == declared.count else { return "it assigns \(assigned.count) ports; the service declares \(declared.count)" }
        var seen = Set<PortKey>()
        for port in declared {
            guard let match = assigned.first(where: { $0.name == port.name }), match.protocol == port.protocol else {
                return "port \(port.name)/\(port.protocol.rawValue) is not assigned"
            }
            if let number = port.number, match.number != number { return "port \(port.name) must be \(number), not \(match.number)" }
            guard (1...65535).contains(match.number), seen.insert(PortKey(number: match.number, protocol: match.protocol)).inserted else {
                return "port \(port.name) has an invalid or repeated number \(match.number)"
            }
        }
        return nil
    }
}
