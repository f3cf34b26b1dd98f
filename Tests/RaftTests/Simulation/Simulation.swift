@testable import Raft

/// A deterministic simulation of a Raft group in one process (TigerBeetle's and FoundationDB's
/// approach): simulated time, network (delay, loss, duplication, reordering, partitions) and
/// disks (unsynced writes lost or torn on crash), crashes and restarts, membership changes,
/// snapshots and leadership transfers, under a client workload on a key-value store. Safety
/// is checked after every event; linearizability of the client history at the end. Every
/// choice comes from one seeded generator: a seed replays a run exactly.
final class Simulation {
    struct Failure: Error, CustomStringConvertible {
        var seed: UInt64
        var reason: String
        var trace: [String]
        var description: String {
            "simulation seed \(seed) failed: \(reason)\n"
                + "replay with RAFT_SIM_SEED=\(seed) swift test --filter RaftTests.SimulationTests\n"
                + "last events:\n" + trace.joined(separator: "\n")
        }
    }

    struct Summary {
        var events = 0
        var operations = 0
        var elections = 0
        var snapshotsSent = 0
        var crashes = 0
        var confChanges = 0
        var transfers = 0
    }

    enum Event {
        case tick(NodeID)
        case deliver(Message)
        case synced(NodeID, incarnation: Int)
        case restart(NodeID)
        case clientStart(Int)
        case clientRetry(Int, opID: UInt64)
        case clientTimeout(Int, opID: UInt64)
        case fault
        case heal
    }

    static let tickUnits: UInt64 = 10

    let seed: UInt64
    private var random: SimRandom
    private(set) var now: UInt64 = 0
    private var queue = EventQueue()
    /// Node `id` lives at `nodes[id - 1]`; removed nodes stay, stopped.
    private var nodes: [SimNode] = []
    private var clients: [SimClient] = []
    private(set) var history: [KVOperation] = []
    private var checker = SafetyChecker()
    private(set) var summary = Summary()
    /// Partition groups by node index; nodes in different groups cannot talk.
    private var groups: [Int] = []
    private var lossProbability: Double
    private var duplicationProbability: Double
    private let longDelayProbability: Double
    private let faultEndTime: UInt64
    private let endTime: UInt64
    private let maxMembers: Int
    private let keys = ["k0", "k1", "k2"]
    private var lastFaultAction = ""
    private let tracing: Bool
    private struct TimedEvent {
        let time: UInt64
        let event: Event
    }

    private var recentEvents: [TimedEvent] = []
    private var recentEventsStart = 0

    init(seed: UInt64, tracing: Bool = false) {
        self.seed = seed
        self.tracing = tracing
        var random = SimRandom(seed: seed)
        let nodeCount = random.chance(0.5) ? 3 : 5
        lossProbability = random.chance(0.3) ? 0 : Double(random.int(in: 1...8)) / 100
        duplicationProbability = random.chance(0.5) ? 0 : Double(random.int(in: 1...5)) / 100
        longDelayProbability = Double(random.int(in: 0...10)) / 100
        faultEndTime = UInt64(random.int(in: 150...250)) * Self.tickUnits
        endTime = faultEndTime + 100 * Self.tickUnits
        maxMembers = nodeCount + 2
        self.random = random
        let conf = ConfState(voters: Set(1...NodeID(nodeCount)))
        for id in 1...NodeID(nodeCount) {
            addNode(id: id, conf: conf)
        }
        clients = (0..<3).map { SimClient(id: $0) }
    }

    // MARK: - Running

    func run() throws(Failure) -> Summary {
        for index in nodes.indices {
            startNode(nodes[index].id)
            // Nodes tick out of phase, like separate machines.
            schedule(.tick(nodes[index].id), after: UInt64(random.int(in: 1...Int(Self.tickUnits))))
        }
        for client in clients.indices {
            schedule(.clientStart(client), after: UInt64(random.int(in: 1...50)))
        }
        schedule(.fault, after: UInt64(random.int(in: 30...80)) * Self.tickUnits)
        schedule(.heal, after: faultEndTime)
        // Liveness is checked over the last 40 ticks: faults are over, the network reliable,
        // every node back. Operations must complete, and every member must catch up with what
        // was committed at the checkpoint.
        let checkpoint = endTime - 40 * Self.tickUnits
        var operationsAtCheckpoint: Int?
        var commitAtCheckpoint: UInt64 = 0
        while let (time, event) = queue.pop(), time <= endTime {
            now = time
            remember(event)
            if time >= checkpoint && operationsAtCheckpoint == nil {
                operationsAtCheckpoint = history.count
                commitAtCheckpoint = nodes.compactMap { $0.core?.commitIndex }.max() ?? 0
            }
            do {
                try handle(event)
            } catch {
                throw failure(error.description)
            }
            if tracing { traceRoleChanges() }
            summary.events += 1
        }
        if history.count <= operationsAtCheckpoint ?? 0 {
            throw failure("liveness: no client operation completed in the last 40 ticks")
        }
        if let leader = currentLeader(), let conf = nodes[index(leader)].core?.confState {
            for node in nodes where node.isUp && (conf.voters.contains(node.id) || conf.learners.contains(node.id)) {
                let commit = node.core?.commitIndex ?? 0
                if commit < commitAtCheckpoint {
                    throw failure("liveness: node \(node.id) is at commit \(commit), behind \(commitAtCheckpoint) "
                        + "committed 40 ticks before the end")
                }
            }
        } else {
            throw failure("liveness: no leader at the end")
        }
        if let violation = LinearizabilityChecker.check(history) {
            throw failure(violation.description)
        }
        summary.operations = history.count
        return summary
    }

    private func handle(_ event: Event) throws(SafetyChecker.Violation) {
        switch event {
        case .tick(let id):
            guard nodes[index(id)].isUp else { return }
            nodes[index(id)].core?.tick()
            // Clocks drift: each node ticks at its own rate, within 20% of the nominal.
            schedule(.tick(id), after: nodes[index(id)].tickUnits)
            try afterStep(id)
        case .deliver(let message):
            let receiver = index(message.to)
            guard nodes[receiver].isUp, groups[receiver] == groups[index(message.from)] else { return }
            // Every message crosses the wire format, as between real nodes.
            let decoded: Message
            do {
                decoded = try Message(decoding: message.encoded())
            } catch {
                throw SafetyChecker.Violation(description: "codec failed on \(message): \(error)")
            }
            do {
                try nodes[receiver].core?.step(decoded)
            } catch {
                throw SafetyChecker.Violation(description: "node \(message.to) refused \(message): \(error)")
            }
            try afterStep(message.to)
        case .synced(let id, let incarnation):
            guard nodes[index(id)].isUp, nodes[index(id)].incarnation == incarnation else { return }
            try completeReady(id)
        case .restart(let id):
            guard !nodes[index(id)].isUp, !nodes[index(id)].decommissioned else { return }
            startNode(id)
            schedule(.tick(id), after: UInt64(random.int(in: 1...Int(Self.tickUnits))))
            try afterStep(id)
        case .clientStart(let client):
            try startOperation(client)
        case .clientRetry(let client, let opID):
            guard clients[client].current?.opID == opID else { return }
            try submit(client)
        case .clientTimeout(let client, let opID):
            guard let operation = clients[client].current, operation.opID == opID else { return }
            // The outcome is unknown: a write may still take effect; a read had no effect.
            if case .get = operation.input {} else {
                finish(client, output: .unknown, returnTime: .max)
                return
            }
            clients[client].current = nil
            schedule(.clientStart(client), after: 1)
        case .fault:
            guard now < faultEndTime else { return }
            try injectFault()
            if now < faultEndTime {
                schedule(.fault, after: UInt64(random.int(in: 3...25)) * Self.tickUnits)
            }
        case .heal:
            // Faults are over: reconnect everyone, restart every node that is down, stop
            // losing messages, and let the group settle.
            groups = groups.map { _ in 0 }
            lossProbability = 0
            duplicationProbability = 0
            for node in nodes where !node.isUp && !node.decommissioned {
                schedule(.restart(node.id), after: 1)
            }
        }
    }

    // MARK: - Nodes

    private func index(_ id: NodeID) -> Int { Int(id) - 1 }

    private func addNode(id: NodeID, conf: ConfState) {
        precondition(Int(id) == nodes.count + 1, "node ids are dense")
        let config = RaftConfig(
            id: id, electionTimeoutTicks: 10, heartbeatIntervalTicks: 3,
            maxAppendBytes: random.int(in: 64...2048), maxInflightAppends: random.int(in: 1...8),
            maxApplyBytesPerReady: random.int(in: 64...4096), snapshotChunkBytes: random.int(in: 16...256))
        nodes.append(SimNode(id: id, conf: conf, config: config,
                             compactionThreshold: UInt64(random.int(in: 5...40)),
                             tickUnits: UInt64(random.int(in: 8...12))))
        groups.append(0)
    }

    private func startNode(_ id: NodeID) {
        let node = nodes[index(id)]
        node.start(seed: random.next())
        try? checker.observeApplied(node: id, index: node.store.appliedIndex, chain: node.store.chain)
    }

    /// After anything happened at a node: check safety, then hand out its next Ready if it
    /// is not busy writing the previous one.
    private func afterStep(_ id: NodeID) throws(SafetyChecker.Violation) {
        let node = nodes[index(id)]
        guard let view = node.core?.simulationView() else { return }
        if view.role == .leader {
            try checker.observeLeader(id, term: view.term)
            if let required = checker.entryRequired(ofLeaderOf: view.term, snapshotIndex: view.firstIndex - 1) {
                let held = node.core?.simulationTerm(at: required.index)
                if held != required.term {
                    throw SafetyChecker.Violation(description: "leader completeness: leader \(id) of term \(view.term) "
                        + "has \(held.map { "term \($0)" } ?? "no entry") at \(required.index), committed with term \(required.term)")
                }
            }
            if node.lastRole != .leader { summary.elections += 1 }
        }
        node.lastRole = view.role
        checker.observeCommit(commitIndex: view.commit, entryTerm: view.commitTerm, nodeTerm: view.term)

        guard node.disk.inFlight == nil, view.hasReady, let ready = node.core?.ready() else { return }
        if let first = ready.entries.first {
            try checker.observeWrite(node: id, entries: ready.entries,
                                     previousTerm: node.core?.simulationTerm(at: first.index - 1) ?? 0)
        }
        node.disk.beginWrite(ready)
        let latency = UInt64(random.int(in: 1...6))
        schedule(.synced(id, incarnation: node.incarnation), after: latency)
    }

    /// The write reached the disk: now the Ready's messages may go, its entries apply.
    private func completeReady(_ id: NodeID) throws(SafetyChecker.Violation) {
        let position = index(id)
        guard let ready = nodes[position].disk.inFlight else { return }
        nodes[position].disk.sync()
        nodes[position].storage?.persist(ready)
        if let snapshot = ready.snapshot {
            nodes[position].store = KVStore(snapshotData: snapshot.data)
            guard nodes[position].store.appliedIndex == snapshot.metadata.index else {
                throw SafetyChecker.Violation(description: "snapshot data at \(nodes[position].store.appliedIndex) "
                    + "labelled \(snapshot.metadata.index)")
            }
            try checker.observeApplied(node: id, index: snapshot.metadata.index, chain: nodes[position].store.chain)
            summary.snapshotsSent += 1
        }
        for message in ready.messages { send(message) }
        for entry in ready.committedEntries {
            try apply(entry, at: id)
            if nodes[position].decommissioned { return }
        }
        nodes[position].pendingReads += ready.readStates
        serveReads(at: id)
        nodes[position].core?.advance(ready)
        compactIfDue(id)
        try afterStep(id)
    }

    private func apply(_ entry: Entry, at id: NodeID) throws(SafetyChecker.Violation) {
        let position = index(id)
        let outcome = nodes[position].store.apply(entry)
        try checker.observeApplied(node: id, index: entry.index, chain: nodes[position].store.chain)
        if entry.kind == .configChange, let change = try? ConfChange(decoding: entry.data),
           change.operation == .removeNode, change.nodeID == id {
            // Told it is out of the group: stop for good.
            nodes[position].decommissioned = true
            nodes[position].stop()
            return
        }
        guard let (command, succeeded) = outcome,
              let client = nodes[position].waitingWrites.removeValue(forKey: command.opID),
              clients[client].current?.opID == command.opID else { return }
        if case .cas = command {
            finish(client, output: succeeded ? .ok : .casFailed, returnTime: now)
        } else {
            finish(client, output: .ok, returnTime: now)
        }
    }

    /// Answers confirmed reads once the state machine has caught up with their index
    /// (thesis §6.4 step 4).
    private func serveReads(at id: NodeID) {
        let position = index(id)
        let applied = nodes[position].store.appliedIndex
        let ready = nodes[position].pendingReads.filter { $0.index <= applied }
        nodes[position].pendingReads.removeAll { $0.index <= applied }
        for read in ready {
            guard let opID = Self.opID(read.context),
                  let waiting = nodes[position].waitingReads.removeValue(forKey: opID),
                  clients[waiting.client].current?.opID == opID else { continue }
            let value = nodes[position].store.values[waiting.key]
            clients[waiting.client].remember(value)
            finish(waiting.client, output: .value(value), returnTime: now)
        }
    }

    private func compactIfDue(_ id: NodeID) {
        let position = index(id)
        guard let storage = nodes[position].storage else { return }
        let applied = nodes[position].store.appliedIndex
        guard applied >= storage.firstIndex - 1 + nodes[position].compactionThreshold,
              let snapshot = try? nodes[position].core?.snapshot(at: applied, data: nodes[position].store.snapshotData())
        else { return }
        do {
            try storage.compact(to: snapshot)
        } catch {
            preconditionFailure("compaction at \(applied) failed: \(error)")
        }
        nodes[position].disk.compact(to: snapshot)
    }

    // MARK: - Network

    private func send(_ message: Message) {
        if random.chance(lossProbability) { return }
        schedule(.deliver(message), after: networkDelay())
        if random.chance(duplicationProbability) {
            schedule(.deliver(message), after: networkDelay())
        }
    }

    /// Mostly well under a tick; sometimes several ticks, which reorders messages.
    private func networkDelay() -> UInt64 {
        random.chance(longDelayProbability) ? UInt64(random.int(in: 10...60)) : UInt64(random.int(in: 1...8))
    }

    // MARK: - Clients

    private func startOperation(_ client: Int) throws(SafetyChecker.Violation) {
        guard now < endTime else { return }
        _ = clients[client].newOperation(&random, keys: keys)
        try submit(client)
    }

    /// Sends the current operation to the node the client believes leads, or any live node.
    private func submit(_ client: Int) throws(SafetyChecker.Violation) {
        guard let operation = clients[client].current else { return }
        let live = liveNodeIDs()
        let hint = clients[client].leaderHint
        guard let target = (hint != 0 && nodes.indices.contains(index(hint)) && nodes[index(hint)].isUp)
                ? hint : random.pick(live) else {
            schedule(.clientRetry(client, opID: operation.opID), after: Self.tickUnits)
            return
        }
        let position = index(target)
        do throws(RaftError) {
            switch operation.input {
            case .get:
                try nodes[position].core?.readIndex(context: Self.context(operation.opID))
                nodes[position].waitingReads[operation.opID] = SimNode.WaitingRead(client: client, key: operation.key)
            case .put(let value):
                try nodes[position].core?.propose(KVCommand.put(opID: operation.opID, key: operation.key, value: value).encoded())
                nodes[position].waitingWrites[operation.opID] = client
            case .cas(let expected, let value):
                try nodes[position].core?.propose(KVCommand.cas(opID: operation.opID, key: operation.key,
                                                                 expected: expected, value: value).encoded())
                nodes[position].waitingWrites[operation.opID] = client
            }
        } catch {
            // Refused before anything happened: try the hinted leader (or any node), later.
            if case .notLeader(let leaderHint) = error { clients[client].leaderHint = leaderHint }
            schedule(.clientRetry(client, opID: operation.opID), after: UInt64(random.int(in: 1...20)))
            return
        }
        clients[client].current?.callTime = now
        clients[client].leaderHint = target
        schedule(.clientTimeout(client, opID: operation.opID), after: 40 * Self.tickUnits)
        // Sent: the node's Ready carries it out.
        try afterStep(target)
    }

    private func finish(_ client: Int, output: KVOperation.Output, returnTime: UInt64) {
        guard let operation = clients[client].current, let callTime = operation.callTime else { return }
        history.append(KVOperation(client: client, key: operation.key, input: operation.input, output: output,
                                   callTime: callTime, returnTime: returnTime))
        if case .put(let value) = operation.input, output == .ok { clients[client].remember(value) }
        if case .cas(_, let value) = operation.input, output == .ok { clients[client].remember(value) }
        clients[client].current = nil
        schedule(.clientStart(client), after: UInt64(random.int(in: 1...60)))
    }

    static func context(_ opID: UInt64) -> [UInt8] {
        withUnsafeBytes(of: opID.littleEndian) { Array($0) }
    }

    static func opID(_ context: [UInt8]) -> UInt64? {
        guard context.count == 8 else { return nil }
        return context.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }

    // MARK: - Faults

    private func liveNodeIDs() -> [NodeID] {
        var live: [NodeID] = []
        for node in nodes where node.isUp { live.append(node.id) }
        return live
    }

    private func injectFault() throws(SafetyChecker.Violation) {
        let live = liveNodeIDs()
        switch random.int(in: 0...10) {
        case 0, 1:
            // Crash a node; it comes back after a while.
            guard let victim = random.pick(live) else { return }
            let lost = nodes[index(victim)].disk.crash(&random)
            nodes[index(victim)].stop()
            lastFaultAction = "crash \(victim): \(lost)"
            summary.crashes += 1
            schedule(.restart(victim), after: UInt64(random.int(in: 5...60)) * Self.tickUnits)
        case 2, 3:
            // Partition: cut one node off, or split the group in two.
            groups = groups.map { _ in 0 }
            if random.chance(0.5), let victim = random.pick(live) {
                groups[index(victim)] = 1
                lastFaultAction = "isolate \(victim)"
            } else {
                for position in groups.indices where random.chance(0.5) { groups[position] = 1 }
                lastFaultAction = "partition \(groups)"
            }
        case 4:
            groups = groups.map { _ in 0 }
            lastFaultAction = "heal partition"
        case 5, 6, 7:
            try changeMembership()
        case 8:
            guard let leader = currentLeader(), let voters = nodes[index(leader)].core?.confState.voters,
                  let target = random.pick(voters.sorted()) else { return }
            try? nodes[index(leader)].core?.transferLeadership(to: target)
            lastFaultAction = "transfer \(leader) -> \(target)"
            summary.transfers += 1
            try afterStep(leader)
        default:
            lastFaultAction = "none"
        }
    }

    /// One server at a time: add a new learner, promote a learner, demote or remove a member
    /// (the leader included).
    private func changeMembership() throws(SafetyChecker.Violation) {
        guard let leader = currentLeader(), let conf = nodes[index(leader)].core?.confState else { return }
        let members = conf.voters.count + conf.learners.count
        let change: ConfChange
        switch random.int(in: 0...4) {
        case 0 where members < maxMembers && nodes.count < 12:
            change = ConfChange(.addLearner, NodeID(nodes.count + 1))
        case 1 where !conf.learners.isEmpty:
            change = ConfChange(.addVoter, random.pick(conf.learners.sorted()) ?? 0)
        case 2 where conf.voters.count >= 3:
            change = ConfChange(.removeNode, random.pick(conf.voters.sorted()) ?? 0)
        case 3 where conf.voters.count >= 3:
            change = ConfChange(.addLearner, random.pick(conf.voters.sorted()) ?? 0)
        case 4 where !conf.learners.isEmpty:
            change = ConfChange(.removeNode, random.pick(conf.learners.sorted()) ?? 0)
        default:
            return
        }
        do {
            try nodes[index(leader)].core?.proposeConfChange(change)
        } catch {
            lastFaultAction = "conf change \(change) refused: \(error)"
            return
        }
        lastFaultAction = "conf change \(change) at \(leader)"
        summary.confChanges += 1
        if Int(change.nodeID) == nodes.count + 1 {
            // A brand-new server: empty disk, no membership until the leader's log says so.
            addNode(id: change.nodeID, conf: ConfState())
            startNode(change.nodeID)
            schedule(.tick(change.nodeID), after: UInt64(random.int(in: 1...Int(Self.tickUnits))))
        }
        try afterStep(leader)
    }

    private func currentLeader() -> NodeID? {
        nodes.filter { $0.core?.isLeader == true }.max { ($0.core?.term ?? 0) < ($1.core?.term ?? 0) }?.id
    }

    // MARK: - Scheduling and tracing

    private func schedule(_ event: Event, after delay: UInt64) {
        queue.schedule(event, at: now + delay)
    }

    private func remember(_ event: Event) {
        if tracing {
            print("\(now) \(describe(event))")
        }
        let capacity = 400
        if recentEvents.count < capacity {
            recentEvents.append(TimedEvent(time: now, event: event))
        } else {
            recentEvents[recentEventsStart] = TimedEvent(time: now, event: event)
            recentEventsStart = (recentEventsStart + 1) % capacity
        }
    }

    private var tracedRoles: [String] = []

    /// With tracing on, prints each node's role and term whenever they change.
    private func traceRoleChanges() {
        let roles = nodes.map { node in
            node.core.map { "\($0.role.rawValue)@\($0.term)" } ?? (node.decommissioned ? "gone" : "down")
        }
        if roles != tracedRoles {
            print("    roles: " + roles.enumerated().map { "\($0.offset + 1)=\($0.element)" }.joined(separator: " "))
            tracedRoles = roles
        }
    }

    private func describe(_ event: Event) -> String {
        switch event {
        case .tick(let id): "tick \(id)"
        case .deliver(let message): "deliver \(message)"
        case .synced(let id, _): "synced \(id)"
        case .restart(let id): "restart \(id)"
        case .clientStart(let client): "client \(client) starts \(clients[client].current.map { "\($0.input) \($0.key)" } ?? "")"
        case .clientRetry(let client, let opID): "client \(client) retries \(opID)"
        case .clientTimeout(let client, let opID): "client \(client) times out \(opID)"
        case .fault: "fault: \(lastFaultAction)"
        case .heal: "heal"
        }
    }

    private func failure(_ reason: String) -> Failure {
        let ordered = recentEvents[recentEventsStart...] + recentEvents[..<recentEventsStart]
        var trace = ordered.suffix(120).map { "  \($0.time) \(describe($0.event))" }
        trace.append("nodes:")
        for node in nodes {
            if let core = node.core {
                trace.append("  \(node.id): \(core.role.rawValue) term=\(core.term) lead=\(core.leader) "
                    + "commit=\(core.commitIndex) applied=\(core.appliedIndex) last=\(core.lastIndex) \(core.confState)")
            } else {
                trace.append("  \(node.id): \(node.decommissioned ? "decommissioned" : "down")")
            }
        }
        return Failure(seed: seed, reason: reason, trace: trace)
    }
}
