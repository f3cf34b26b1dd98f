@testable import Raft

/// The nodes of a scenario and the messages between them. Each node's `Ready` is handled
/// synchronously: persisted to its `MemoryStorage`, messages queued, committed entries applied
/// to a state machine that is just the list of applied data.
final class ScenarioCluster {
    struct Node {
        var core: RaftCore
        let storage: MemoryStorage
        let config: RaftConfig
        /// The state machine: the data of every normal entry applied, in order.
        var applied: [String]
    }

    var nodes: [NodeID: Node] = [:]
    /// Messages sent and not yet delivered, in the order sent.
    var mailbox: [Message] = []
    /// Links that drop messages, as sorted pairs.
    var cuts: Set<[NodeID]> = []

    func run(_ line: String) throws -> [String] {
        let words = line.split(separator: " ")
        guard let name = words.first else { return [] }
        let arguments = ScenarioArguments(words.dropFirst())
        switch name {
        case "add-nodes": return try addNodes(arguments)
        case "set-log": return try setLog(arguments)
        case "restart": return try restart(arguments.nodeID(at: 0))
        case "campaign": return try campaign(arguments.nodeID(at: 0))
        case "tick": return try tick(arguments.nodeID(at: 0), count: Int(arguments.positional.dropFirst().first ?? "1") ?? 1)
        case "tick-heartbeat": return try tickHeartbeat(arguments.nodeID(at: 0))
        case "tick-election": return try tickElection(arguments.nodeID(at: 0))
        case "process-ready": return try arguments.nodeIDs().flatMap(processReady)
        case "deliver-msgs": return try deliver(to: arguments.nodeIDs(), drop: arguments.named["drop"] == "true")
        case "stabilize": return try stabilize(arguments.positional.isEmpty ? nodes.keys.sorted() : arguments.nodeIDs())
        case "propose": return try propose(arguments)
        case "conf-change": return try proposeConfChange(arguments)
        case "transfer-leadership": return try transferLeadership(arguments)
        case "read-index": return try readIndex(arguments)
        case "compact": return try compact(arguments)
        case "cut": return try cut(arguments)
        case "partition": return try partition(words.dropFirst())
        case "isolate": return try isolate(arguments.nodeID(at: 0))
        case "heal": cuts = []; return ["ok"]
        case "status": return try status(arguments.nodeID(at: 0))
        case "log": return try logLines(arguments.nodeID(at: 0))
        case "raft-state": return raftState()
        default: throw ScenarioError(message: "unknown command \(name)")
        }
    }

    // MARK: - Setup

    private func addNodes(_ arguments: ScenarioArguments) throws -> [String] {
        let count = try arguments.nodeID(at: 0)
        let voters = Set(try arguments.list("voters") ?? [])
        let learners = Set(try arguments.list("learners") ?? [])
        let index = UInt64(try arguments.int("index", default: 0))
        var lines: [String] = []
        for _ in 0..<count {
            let id = NodeID(nodes.count + 1)
            let config = RaftConfig(
                id: id,
                electionTimeoutTicks: try arguments.int("election", default: 10),
                heartbeatIntervalTicks: try arguments.int("heartbeat", default: 1),
                maxAppendBytes: try arguments.int("max-append-bytes", default: 1 << 20),
                maxInflightAppends: try arguments.int("inflight", default: 256),
                maxApplyBytesPerReady: try arguments.int("max-apply-bytes", default: 1 << 20),
                snapshotChunkBytes: try arguments.int("chunk", default: 1 << 20))
            let conf = ConfState(voters: voters, learners: learners)
            let storage: MemoryStorage
            if index > 0 {
                // Start from a snapshot at `index`, as etcd's add-nodes does, so logs do not
                // begin empty.
                let snapshot = Snapshot(metadata: SnapshotMetadata(index: index, term: 1, confState: conf))
                storage = MemoryStorage(snapshot: snapshot, hardState: HardState(term: 1, vote: 0, commit: index))
            } else {
                storage = MemoryStorage(bootstrap: conf)
            }
            nodes[id] = Node(core: RaftCore(config: config, storage: storage, random: SplitMix64(seed: id)),
                             storage: storage, config: config, applied: [])
            lines.append("added \(id): \(conf) snapshot=\(storage.snapshotMetadata.term)/\(index)")
        }
        return lines
    }

    /// Replaces a node's persisted log with entries of the given terms (data `i@t`), to set up
    /// divergent logs, and restarts it.
    private func setLog(_ arguments: ScenarioArguments) throws -> [String] {
        let id = try arguments.nodeID(at: 0)
        guard let node = nodes[id] else { throw ScenarioError(message: "no node \(id)") }
        let terms = try arguments.list("terms") ?? []
        let snapshot = node.storage.latestSnapshot
        var entries: [Entry] = []
        for (offset, term) in terms.enumerated() {
            let index = snapshot.metadata.index + UInt64(offset) + 1
            entries.append(Entry(term: term, index: index, data: Array("\(index)@\(term)".utf8)))
        }
        let term = max(UInt64(try arguments.int("term", default: 0)), terms.last ?? 0, node.storage.hardState.term)
        let commit = UInt64(try arguments.int("commit", default: Int(snapshot.metadata.index)))
        let storage = MemoryStorage(snapshot: snapshot, hardState: HardState(term: term, vote: 0, commit: commit),
                                    entries: entries)
        nodes[id] = Node(core: RaftCore(config: node.config, storage: storage, random: SplitMix64(seed: id)),
                         storage: storage, config: node.config, applied: [])
        return try logLines(id)
    }

    /// Rebuilds a node from its storage, as after a crash (every Ready here was persisted).
    private func restart(_ id: NodeID) throws -> [String] {
        guard let node = nodes[id] else { throw ScenarioError(message: "no node \(id)") }
        let snapshot = node.storage.latestSnapshot
        nodes[id] = Node(core: RaftCore(config: node.config, storage: node.storage, random: SplitMix64(seed: id + 1000)),
                         storage: node.storage, config: node.config, applied: Self.decodeState(snapshot.data))
        return ["restarted \(id): \(nodes[id].map { Self.summary($0.core) } ?? "")"]
    }

    // MARK: - Time and elections

    private func campaign(_ id: NodeID) throws -> [String] {
        try withNode(id) { $0.core.campaign() }
        return ["ok"]
    }

    /// Ticks `count` times, reporting role changes with the tick they happened on.
    private func tick(_ id: NodeID, count: Int) throws -> [String] {
        var lines: [String] = []
        for tickNumber in 1...max(count, 1) {
            let before = try core(id).role
            try withNode(id) { $0.core.tick() }
            let after = try core(id)
            if after.role != before {
                lines.append("tick \(tickNumber): \(id) became \(after.role.rawValue) at term \(after.term)")
            }
        }
        return lines.isEmpty ? ["ok"] : lines
    }

    private func tickHeartbeat(_ id: NodeID) throws -> [String] {
        try tick(id, count: try node(id).config.heartbeatIntervalTicks)
    }

    private func tickElection(_ id: NodeID) throws -> [String] {
        try tick(id, count: try node(id).config.electionTimeoutTicks)
    }

    // MARK: - Ready and delivery

    private func processReady(_ id: NodeID) throws -> [String] {
        var lines = ["> \(id) handling Ready"]
        guard try core(id).hasReady else { return lines + ["  (nothing)"] }
        let ready = try withNode(id) { $0.core.ready() }
        if let soft = ready.softState {
            lines.append("  state: \(soft.role.rawValue) lead=\(soft.leader)")
        }
        if let hard = ready.hardState { lines.append("  hard-state: \(hard)") }
        if !ready.entries.isEmpty {
            lines.append("  entries:")
            lines += ready.entries.map { "    \($0)" }
        }
        if let snapshot = ready.snapshot {
            lines.append("  snapshot: \(Self.describe(snapshot))")
        }
        if !ready.committedEntries.isEmpty {
            lines.append("  committed:")
            lines += ready.committedEntries.map { "    \($0)" }
        }
        if !ready.messages.isEmpty {
            lines.append("  messages:")
            lines += ready.messages.map { "    \($0)" }
        }
        if !ready.readStates.isEmpty {
            lines.append("  read-states:")
            lines += ready.readStates.map { "    index=\($0.index) ctx=\(renderBytes($0.context))" }
        }
        // Persist, send, apply, advance: the order Ready documents.
        try withNode(id) { node in
            node.storage.persist(ready)
            if let snapshot = ready.snapshot { node.applied = Self.decodeState(snapshot.data) }
            for entry in ready.committedEntries where entry.kind == .normal && !entry.data.isEmpty {
                node.applied.append(String(decoding: entry.data, as: UTF8.self))
            }
            node.core.advance(ready)
        }
        mailbox += ready.messages
        return lines
    }

    private func deliver(to ids: [NodeID], drop: Bool) throws -> [String] {
        var lines: [String] = []
        for id in ids {
            let incoming = mailbox.filter { $0.to == id }
            mailbox.removeAll { $0.to == id }
            guard !incoming.isEmpty else { continue }
            lines.append("> \(id) receiving messages")
            for message in incoming {
                if drop || cuts.contains([message.from, message.to].sorted()) {
                    lines.append("  \(message) DROPPED")
                    continue
                }
                lines.append("  \(message)")
                // Every message crosses the wire format, as it will between real nodes.
                let decoded = try Message(decoding: message.encoded())
                guard decoded == message else { throw ScenarioError(message: "codec changed \(message)") }
                do {
                    try withNode(id) { try $0.core.step(decoded) }
                } catch {
                    lines.append("  error: \(error)")
                }
            }
        }
        return lines
    }

    private func stabilize(_ ids: [NodeID]) throws -> [String] {
        var lines: [String] = []
        while true {
            var progressed = false
            for id in ids where try core(id).hasReady {
                lines += try processReady(id)
                progressed = true
            }
            for id in ids where mailbox.contains(where: { $0.to == id }) {
                lines += try deliver(to: [id], drop: false)
                progressed = true
            }
            if !progressed { return lines.isEmpty ? ["ok"] : lines }
        }
    }

    // MARK: - Requests

    private func propose(_ arguments: ScenarioArguments) throws -> [String] {
        let id = try arguments.nodeID(at: 0)
        let data = arguments.positional.dropFirst().joined(separator: " ")
        return try report { () throws(RaftError) -> String in
            var position: LogPosition?
            try withNodeTyped(id) { node throws(RaftError) in position = try node.core.propose(Array(data.utf8)) }
            return "ok \(position.map { "\($0.term)/\($0.index)" } ?? "")"
        }
    }

    private func proposeConfChange(_ arguments: ScenarioArguments) throws -> [String] {
        let id = try arguments.nodeID(at: 0)
        guard arguments.positional.count == 3, let target = NodeID(arguments.positional[2]) else {
            throw ScenarioError(message: "usage: conf-change <node> add-voter|add-learner|remove <id>")
        }
        let operation: ConfChange.Operation
        switch arguments.positional[1] {
        case "add-voter": operation = .addVoter
        case "add-learner": operation = .addLearner
        case "remove": operation = .removeNode
        default: throw ScenarioError(message: "unknown conf change \(arguments.positional[1])")
        }
        return try report { () throws(RaftError) -> String in
            var position: LogPosition?
            try withNodeTyped(id) { node throws(RaftError) in
                position = try node.core.proposeConfChange(ConfChange(operation, target))
            }
            return "ok \(position.map { "\($0.term)/\($0.index)" } ?? "")"
        }
    }

    private func transferLeadership(_ arguments: ScenarioArguments) throws -> [String] {
        let id = try arguments.nodeID(at: 0)
        let target = try arguments.nodeID(at: 1)
        return try report { () throws(RaftError) -> String in
            try withNodeTyped(id) { node throws(RaftError) in try node.core.transferLeadership(to: target) }
            return "ok"
        }
    }

    private func readIndex(_ arguments: ScenarioArguments) throws -> [String] {
        let id = try arguments.nodeID(at: 0)
        let context = arguments.positional.count > 1 ? arguments.positional[1] : ""
        return try report { () throws(RaftError) -> String in
            try withNodeTyped(id) { node throws(RaftError) in try node.core.readIndex(context: Array(context.utf8)) }
            return "ok"
        }
    }

    /// The application snapshots its state at `index` and compacts the log before it.
    private func compact(_ arguments: ScenarioArguments) throws -> [String] {
        let id = try arguments.nodeID(at: 0)
        let index = UInt64(try arguments.nodeID(at: 1))
        let node = try node(id)
        // The state at `index`: entries applied up to there. The harness only compacts at the
        // applied index, so the whole state machine.
        guard index == node.core.appliedIndex else {
            throw ScenarioError(message: "the harness compacts only at the applied index \(node.core.appliedIndex)")
        }
        let data = Array(node.applied.joined(separator: ",").utf8)
        let snapshot = try node.core.snapshot(at: index, data: data)
        try node.storage.compact(to: snapshot)
        return ["ok snapshot \(Self.describe(snapshot)) first=\(node.storage.firstIndex)"]
    }

    private func cut(_ arguments: ScenarioArguments) throws -> [String] {
        cuts.insert([try arguments.nodeID(at: 0), try arguments.nodeID(at: 1)].sorted())
        return ["ok"]
    }

    /// `partition 1 2 | 3`: no messages between the groups until `heal`.
    private func partition(_ words: ArraySlice<Substring>) throws -> [String] {
        let groups = try words.split(separator: "|").map { group in
            try group.map { word in
                guard let id = NodeID(word) else { throw ScenarioError(message: "bad node id \(word)") }
                return id
            }
        }
        for (position, group) in groups.enumerated() {
            for other in groups[(position + 1)...] {
                for first in group {
                    for second in other { cuts.insert([first, second].sorted()) }
                }
            }
        }
        return ["ok"]
    }

    private func isolate(_ id: NodeID) throws -> [String] {
        for other in nodes.keys where other != id { cuts.insert([id, other].sorted()) }
        return ["ok"]
    }

    // MARK: - Inspection

    private func status(_ id: NodeID) throws -> [String] {
        let core = try core(id)
        let status = core.status
        var lines = ["\(Self.summary(core)) first=\(status.firstIndex) \(status.confState)"]
        if status.transferTarget != 0 { lines.append("  transferring to \(status.transferTarget)") }
        for (peer, progress) in status.progress.sorted(by: { $0.key < $1.key }) where peer != id {
            var line = "  \(peer): match=\(progress.match) next=\(progress.next) \(Self.describe(progress.state))"
            if progress.inflightCount > 0 { line += " inflight=\(progress.inflightCount)" }
            if !progress.recentActive { line += " inactive" }
            lines.append(line)
        }
        return lines
    }

    private func logLines(_ id: NodeID) throws -> [String] {
        let node = try node(id)
        var lines = ["snapshot: \(Self.describe(node.storage.latestSnapshot))"]
        if node.storage.lastIndex >= node.storage.firstIndex {
            lines += try node.storage.entries(from: node.storage.firstIndex, upTo: node.storage.lastIndex + 1,
                                              maxBytes: .max).map { "\($0)" }
        }
        lines.append("hard-state: \(node.storage.hardState)")
        lines.append("applied: \(node.applied.joined(separator: ","))")
        return lines
    }

    private func raftState() -> [String] {
        nodes.keys.sorted().compactMap { id in nodes[id].map { Self.summary($0.core) } }
    }

    // MARK: - Helpers

    static func summary(_ core: RaftCore) -> String {
        "\(core.id): \(core.role.rawValue) term=\(core.term) lead=\(core.leader) commit=\(core.commitIndex) "
            + "applied=\(core.appliedIndex) last=\(core.lastIndex)"
    }

    static func describe(_ snapshot: Snapshot) -> String {
        "\(snapshot.metadata.term)/\(snapshot.metadata.index) \(snapshot.metadata.confState) data=\(renderBytes(snapshot.data))"
    }

    static func describe(_ state: ReplicationState) -> String {
        switch state {
        case .probe: "probe"
        case .replicate: "replicate"
        case .snapshot(let index): "snapshot(\(index))"
        }
    }

    static func decodeState(_ data: [UInt8]) -> [String] {
        data.isEmpty ? [] : String(decoding: data, as: UTF8.self).split(separator: ",").map(String.init)
    }

    private func node(_ id: NodeID) throws -> Node {
        guard let node = nodes[id] else { throw ScenarioError(message: "no node \(id)") }
        return node
    }

    private func core(_ id: NodeID) throws -> RaftCore {
        try node(id).core
    }

    @discardableResult
    private func withNode<R>(_ id: NodeID, _ body: (inout Node) throws -> R) throws -> R {
        guard var node = nodes.removeValue(forKey: id) else { throw ScenarioError(message: "no node \(id)") }
        defer { nodes[id] = node }
        return try body(&node)
    }

    private func withNodeTyped(_ id: NodeID, _ body: (inout Node) throws(RaftError) -> Void) throws(RaftError) {
        guard var node = nodes.removeValue(forKey: id) else { preconditionFailure("no node \(id)") }
        defer { nodes[id] = node }
        try body(&node)
    }

    /// Runs a request and reports its outcome, an expected error included, as one line.
    private func report(_ body: () throws(RaftError) -> String) throws -> [String] {
        do {
            return [try body()]
        } catch {
            return ["error: \(error)"]
        }
    }
}
