extension ClusterState {
    mutating func registerNode(_ registration: NodeRegistration, at index: UInt64, time: Timestamp) throws(ControllerError) -> CommandResult {
        if let problem = Self.problem(with: registration) { throw .invalidNode(name: registration.name, reason: problem) }
        let previous = nodes[registration.name]
        // A re-registration (agent restart, new attributes) keeps the operator's drain. Instances
        // already there stay even if the new attributes no longer satisfy their constraints, as
        // in Nomad: constraints choose where to place, they do not evict.
        var record = NodeRecord(
            registration: registration, isDown: false, isDraining: previous?.isDraining ?? false, lastHeartbeat: time,
            registeredIndex: previous?.registeredIndex ?? index)
        record.drainDeadline = previous?.drainDeadline
        record.isEligible = previous?.isEligible ?? true
        nodes[registration.name] = record
        lastChangeIndex = index
        return .nodeUpdated(name: registration.name, status: record.status)
    }

    mutating func heartbeat(_ name: String, at index: UInt64, time: Timestamp) throws(ControllerError) -> CommandResult {
        guard var node = nodes[name] else { throw .nodeNotFound(name) }
        // Instances marked lost stay lost until the node reports on them: only it knows
        // whether they survived.
        node.isDown = false
        node.downSince = nil
        node.lastHeartbeat = time
        nodes[name] = node
        lastChangeIndex = index
        return .nodeUpdated(name: name, status: node.status)
    }

    mutating func markNodeDown(_ name: String, lastHeartbeatSeen: Timestamp?, at index: UInt64, time: Timestamp) throws(ControllerError) -> CommandResult {
        guard let node = nodes[name] else { throw .nodeNotFound(name) }
        if let lastHeartbeatSeen, node.lastHeartbeat != lastHeartbeatSeen {
            throw .staleHeartbeat(node: name, lastHeartbeat: node.lastHeartbeat)
        }
        if node.isDown { return .nodeUpdated(name: name, status: .down) }
        nodes[name]?.isDown = true
        nodes[name]?.downSince = time
        for instance in instances(on: name) {
            if instance.desiredState == .stop {
                forgetIfSettled(instance.id)
            } else if !instance.status.isTerminal {
                instances[instance.id]?.record(.lost, "node \(name) is down", at: time)
                instances[instance.id]?.modifiedIndex = index
            }
        }
        lastChangeIndex = index
        return .nodeUpdated(name: name, status: .down)
    }

    mutating func setDraining(_ name: String, _ draining: Bool, deadline: Timestamp?, at index: UInt64) throws(ControllerError) -> CommandResult {
        guard let node = nodes[name] else { throw .nodeNotFound(name) }
        let newDeadline = draining ? deadline : nil
        if node.isDraining != draining || node.drainDeadline != newDeadline {
            nodes[name]?.isDraining = draining
            nodes[name]?.drainDeadline = newDeadline
            lastChangeIndex = index
        }
        return .nodeUpdated(name: name, status: nodes[name]?.status ?? node.status)
    }

    mutating func setEligibility(_ name: String, _ eligible: Bool, at index: UInt64) throws(ControllerError) -> CommandResult {
        guard let node = nodes[name] else { throw .nodeNotFound(name) }
        if node.isEligible != eligible {
            nodes[name]?.isEligible = eligible
            lastChangeIndex = index
        }
        return .nodeUpdated(name: name, status: nodes[name]?.status ?? node.status)
    }

    /// Whether the instance's node is draining and its drain deadline has passed at `now`:
    /// what still runs there is stopped and replaced at once, whatever the rollout allows.
    public func drainDeadlinePassed(for instance: InstanceRecord, at now: Timestamp?) -> Bool {
        guard let now, let deadline = drainDeadline(for: instance) else { return false }
        return now >= deadline
    }

    /// The drain deadline of the node an instance is on, while it drains.
    func drainDeadline(for instance: InstanceRecord) -> Timestamp? {
        guard let node = nodes[instance.node], node.isDraining else { return nil }
        return node.drainDeadline
    }

    /// What makes a registration unusable, said so that the agent's operator can fix its config.
    static func problem(with registration: NodeRegistration) -> String? {
        let name = registration.name
        let allowed = name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
                || byte == UInt8(ascii: "_")
        }
        if name.isEmpty || name.utf8.count > 253 || !allowed {
            return "a node name is 1 to 253 letters, digits, '-', '.' or '_' (a host name)"
        }
        if registration.capacity.cpuMillicores <= 0 || registration.capacity.memoryBytes <= 0 {
            return "capacity must have some cpu and memory (got \(registration.capacity.cpuMillicores) millicores, \(registration.capacity.memoryBytes) bytes)"
        }
        let ports = registration.dynamicPorts
        if ports.lowest < 1 || ports.highest > 65535 || ports.lowest > ports.highest {
            return "the dynamic port range \(ports) must be within 1-65535, lowest first"
        }
        return nil
    }
}
