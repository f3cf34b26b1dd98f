@testable import Raft

/// The servers: starting them, handing out and completing their Ready, applying, compacting,
/// and the network between them.
extension Simulation {

    func index(_ id: NodeID) -> Int { Int(id) - 1 }

    func addNode(id: NodeID, conf: ConfState) {
        precondition(Int(id) == nodes.count + 1, "node ids are dense")
        // A quarter of the servers send one entry per append: a follower then acknowledges
        // a leader's log a piece at a time, earlier terms' entries before its own. They keep a
        // few appends in flight, or a follower far behind could not catch up within the run.
        let oneEntryPerAppend = random.chance(0.25)
        let config = RaftConfig(
            id: id, electionTimeoutTicks: 6, heartbeatIntervalTicks: 2,
            maxAppendBytes: oneEntryPerAppend ? 1 : random.int(in: 64...2048),
            maxInflightAppends: oneEntryPerAppend ? random.int(in: 4...8) : random.int(in: 1...8),
            maxApplyBytesPerReady: random.int(in: 64...4096), snapshotChunkBytes: random.int(in: 16...256))
        nodes.append(SimNode(id: id, conf: conf, config: config,
                             compactionThreshold: UInt64(random.int(in: 5...40)),
                             tickUnits: UInt64(random.int(in: 8...12)),
                             // A quarter of the disks are slow while faults last (contended):
                             // a leader on one then hears its followers' acknowledgements
                             // before its own sync ends, and must not count itself meanwhile.
                             syncLatency: random.chance(0.25) ? 1...40 : 1...6))
        groups.append(0)
    }

    func startNode(_ id: NodeID) throws(SafetyChecker.Violation) {
        let node = nodes[index(id)]
        node.start(seed: random.next())
        // What a restarted node recovered must agree with what the others applied.
        try checker.observeApplied(node: id, index: node.store.appliedIndex, chain: node.store.chain)
    }

    /// After anything happened at a node: check safety, then hand out its next Ready if it
    /// is not busy writing the previous one.
    func afterStep(_ id: NodeID) throws(SafetyChecker.Violation) {
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
            if node.lastRole != .leader {
                summary.elections += 1
                leaderElectedDuringChurn(id)
                if let transfer = pendingTransfer, view.term > transfer.term {
                    if transfer.target == id { summary.transfersCompleted += 1 }
                    pendingTransfer = nil
                }
            }
        }
        node.lastRole = view.role
        if view.commit != node.lastObservedCommit.index || view.term != node.lastObservedCommit.term {
            let advanced = view.commit > node.lastObservedCommit.index
            node.lastObservedCommit = SafetyChecker.Position(index: view.commit, term: view.term)
            checker.observeCommit(commitIndex: view.commit, entryTerm: view.commitTerm, nodeTerm: view.term)
            // A leader that dies the moment it decides an entry is committed, before the
            // messages of that step leave (they go once its disk has synced): whatever it
            // counted as committed must already be on a majority. Figure 8 of the Raft paper
            // is a leader of a later term counting replicas of an earlier term's entry, then
            // dying here.
            if view.role == .leader && advanced && now < faultEndTime
                && (crashAtFirstCommit == id || random.chance(0.02)) {
                let churnEnds = crashAtFirstCommit == id
                if churnEnds {
                    // Churn ends: the leader it left dies, and the partitions heal as it does.
                    crashAtFirstCommit = nil
                    groups = groups.map { _ in 0 }
                }
                crash(id, "crash on commit")
                // Sometimes with a follower cut off at the same moment (the leader's rack):
                // the entries it counted as committed must then be on the other disks. A
                // leader that counted its own unsynced write has just lost it.
                if !churnEnds && random.chance(0.3), let follower = random.pick(liveNodeIDs()) {
                    isolate(follower)
                    lastFaultAction += ", isolate \(follower)"
                    crashedWhileHandling = lastFaultAction
                }
                return
            }
        }

        // No Ready while the previous one is being handled (`hasReady` is false until it is
        // advanced); a leader's advanced Readies may still be syncing, as in the agent.
        guard view.hasReady, let ready = node.core?.ready() else { return }
        if let first = ready.entries.first {
            try checker.observeWrite(node: id, entries: ready.entries,
                                     previousTerm: node.core?.simulationTerm(at: first.index - 1) ?? 0)
        }
        // A slow disk is a fault like the others: the calm after them is for settling.
        let latency = now < faultEndTime ? node.syncLatency : 1...6
        schedule(.synced(id, incarnation: node.incarnation), after: UInt64(random.int(in: latency)))
        guard ready.messagesMayPrecedePersist else {
            node.disk.beginWrite(ready, advanced: false)
            return
        }
        // A leader's Ready, handled as the agent's driver does: appends leave before its disk
        // syncs, what is committed applies, and the core counts the leader's own entries only
        // once `persisted(through:)` reports them synced (`completeReady`).
        for message in ready.messages { send(message) }
        node.storage?.persist(ready)
        var unsent = ready
        unsent.messages = []
        node.disk.beginWrite(unsent, advanced: true)
        try applyAndAdvance(ready, at: id, durable: false)
    }

    /// The oldest write in flight reached the disk: a leader's is reported to its core; any
    /// other Ready's messages may now go, its entries apply.
    func completeReady(_ id: NodeID) throws(SafetyChecker.Violation) {
        let position = index(id)
        guard let write = nodes[position].disk.sync() else { return }
        let ready = write.ready
        if write.advanced {
            if let last = ready.entries.last {
                nodes[position].core?.persisted(through: LogPosition(index: last.index, term: last.term))
            }
            try afterStep(id)
            return
        }
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
        try applyAndAdvance(ready, at: id, durable: true)
    }

    /// The end of handling a Ready, either way: apply, serve reads, advance, compact.
    private func applyAndAdvance(_ ready: Ready, at id: NodeID, durable: Bool) throws(SafetyChecker.Violation) {
        let node = nodes[index(id)]
        for entry in ready.committedEntries {
            try apply(entry, at: id)
            if node.decommissioned { return }
        }
        node.pendingReads += ready.readStates
        serveReads(at: id)
        node.core?.advance(ready, durable: durable)
        compactIfDue(id)
        try afterStep(id)
    }

    func apply(_ entry: Entry, at id: NodeID) throws(SafetyChecker.Violation) {
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
    func serveReads(at id: NodeID) {
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

    func compactIfDue(_ id: NodeID) {
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

    func send(_ message: Message) {
        if random.chance(lossProbability) { return }
        schedule(.deliver(message), after: networkDelay())
        if random.chance(duplicationProbability) {
            schedule(.deliver(message), after: networkDelay())
        }
    }

    /// Mostly well under a tick; sometimes several ticks, which reorders messages.
    func networkDelay() -> UInt64 {
        random.chance(longDelayProbability) ? UInt64(random.int(in: 10...60)) : UInt64(random.int(in: 1...8))
    }
}
