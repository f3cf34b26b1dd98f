extension RaftNode {
    /// Starts the Ready loop unless it is already running; a running loop picks up whatever the
    /// caller just did, since it asks the core for more before it stops.
    func scheduleReadyLoop() {
        publishLeader()
        guard !readyLoopRunning, terminalError == nil, core.hasReady else { return }
        readyLoopRunning = true
        readyLoop = Task { await self.runReadyLoop() }
    }

    private func runReadyLoop() async {
        defer { readyLoopRunning = false }
        while terminalError == nil && core.hasReady {
            let ready = core.ready()
            do {
                try await handle(ready)
            } catch {
                // Storage can no longer be trusted to hold what we promise (fsyncgate): stop
                // rather than answer anyone from a state that may not be durable.
                if terminalError == nil { terminate(.storageFailed(String(describing: error))) }
                return
            }
        }
    }

    /// Does what one Ready asks, in the order it prescribes.
    private func handle(_ ready: Ready) async throws {
        // 1. Persist: a leader's snapshot's file first (its fsync off this actor), then the
        // snapshot marker, entries and hard state in one WAL batch. When only the commit index
        // moved (mustSync false) the write is queued but neither waited for (etcd raft) nor
        // synced on its own: it goes to disk with the next batch that must be durable.
        // A leader's appends go first, so that its followers' fsyncs overlap its own.
        if ready.messagesMayPrecedePersist && !ready.messages.isEmpty { transport.send(ready.messages) }
        if let snapshot = ready.snapshot {
            // One snapshot file in the making at a time: the storage names the last one written.
            await compaction?.value
            // A compaction that failed has stopped the node: nothing more to write.
            if terminalError != nil { return }
            try await storage.writeSnapshotFile(snapshot)
        }
        var ticket: WriteAheadLog.Ticket?
        if ready.snapshot != nil || !ready.entries.isEmpty || ready.hardState != nil {
            ticket = try storage.submit(
                hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot, mustSync: ready.mustSync)
        }
        if ready.messagesMayPrecedePersist {
            // A leader of an unchanged term does not wait for its own sync (etcd raft's
            // asynchronous storage writes): its entries count toward a majority once the WAL
            // confirms them (`watchDurability`), and what the followers committed meanwhile is
            // applied now. Waiting here held every next batch of appends and every answer behind
            // the leader's fsync: with its WAL on tmpfs, 16 writers ran about 20 % faster.
            for entry in ready.committedEntries { apply(entry) }
            for readState in ready.readStates { confirmRead(readState) }
            releaseReads()
            if let ticket, let last = ready.entries.last {
                watchDurability(of: ticket, through: LogPosition(index: last.index, term: last.term))
            }
            core.advance(ready, durable: false)
        } else {
            try await handleInOrder(ready, ticket: ticket)
            if terminalError != nil { return }
        }
        // 4. Compact once enough has been applied since the last snapshot: the snapshot is
        // taken here, between an advance and the next ready, and written beside the loop. Its
        // file's fsync, its directory's and its WAL record's took up to 230 ms under load (a new
        // file costs a journal commit), and every write of the group waited for them while the
        // loop did (etcd writes its snapshots beside its loop too). The log is compacted when
        // the record is submitted, only up to what is applied here, which is stable.
        let snapshotIndex = storage.snapshotMetadata.index
        if compaction == nil, appliedIndex > snapshotIndex, appliedIndex >= snapshotIndex + options.snapshotEveryAppliedEntries
            || appliedBytesSinceSnapshot >= options.snapshotEveryAppliedBytes
        {
            let snapshot = try core.snapshot(at: appliedIndex, data: machine.snapshot())
            appliedBytesSinceSnapshot = 0
            compaction = Task { await self.compact(to: snapshot) }
        }
    }

    /// The rest of a `Ready` that must be durable before its messages go (a follower's, a
    /// candidate's, a leader's whose term or vote changed): persist, send, apply, advance.
    private func handleInOrder(_ ready: Ready, ticket: WriteAheadLog.Ticket?) async throws {
        // Committed entries this node had made durable before this Ready (those before its own
        // entries; a committed entry is never replaced) are applied while its write is on the
        // way to the disk, not after: their proposers' answers do not wait for the sync of the
        // entries proposed since (etcd applies beside its WAL write the same way). Measured
        // with 16 writers, most Readies carry both, so otherwise every answer waited a sync more.
        let appliedEarly = ready.snapshot == nil ? ready.committedEntries.prefix { $0.index < ready.entries.first?.index ?? .max }.count : 0
        if appliedEarly > 0 {
            for entry in ready.committedEntries.prefix(appliedEarly) { apply(entry) }
            releaseReads()
        }
        // What this Ready's messages promise covers every earlier write, a leader's unconfirmed
        // ones included (it may just have stepped down): tickets become durable in order.
        let mustWaitFor = [ready.mustSync ? ticket : nil, unconfirmedLeaderWrite?.ticket].compactMap { $0 }.max()
        if let mustWaitFor { try await storage.waitUntilDurable(mustWaitFor) }
        if terminalError != nil { return }
        if let unconfirmed = unconfirmedLeaderWrite, let mustWaitFor, unconfirmed.ticket <= mustWaitFor {
            unconfirmedLeaderWrite = nil
        }
        // 2. Send: the messages promise what was just persisted.
        if !ready.messages.isEmpty { transport.send(ready.messages) }
        // 3. Apply the rest.
        if let snapshot = ready.snapshot { try install(snapshot) }
        for entry in ready.committedEntries.dropFirst(appliedEarly) { apply(entry) }
        for readState in ready.readStates { confirmRead(readState) }
        releaseReads()
        core.advance(ready)
    }

    /// Reports the leader's write behind `ticket` to the core once the WAL has made it durable.
    /// One watch at a time, on the latest write: a sync makes every earlier batch durable too.
    private func watchDurability(of ticket: WriteAheadLog.Ticket, through last: LogPosition) {
        unconfirmedLeaderWrite = (ticket, last)
        guard durabilityWatch == nil else { return }
        durabilityWatch = Task { await self.reportDurability() }
    }

    private func reportDurability() async {
        defer { durabilityWatch = nil }
        while terminalError == nil, let write = unconfirmedLeaderWrite {
            do {
                try await storage.waitUntilDurable(write.ticket)
            } catch {
                if terminalError == nil { terminate(.storageFailed(String(describing: error))) }
                return
            }
            if terminalError != nil { return }
            if unconfirmedLeaderWrite?.ticket == write.ticket { unconfirmedLeaderWrite = nil }
            core.persisted(through: write.last)
            scheduleReadyLoop()
        }
    }

    /// Writes `snapshot` and compacts the log to it; a failure stops the node, as one in the
    /// loop does.
    private func compact(to snapshot: Snapshot) async {
        do {
            try await storage.compact(to: snapshot)
        } catch {
            if terminalError == nil { terminate(.storageFailed(String(describing: error))) }
        }
        compaction = nil
    }

    private func install(_ snapshot: Snapshot) throws {
        try machine.restore(from: snapshot.data)
        appliedIndex = snapshot.metadata.index
        appliedBytesSinceSnapshot = 0
        // Proposals the snapshot covers were never seen as entries here: their fate is unknown.
        for index in proposals.keys where index <= snapshot.metadata.index {
            proposals.removeValue(forKey: index)?.finish(.failure(RaftNodeError.proposalOutcomeUnknown(index: index)))
        }
    }

    private func apply(_ entry: Entry) {
        if entry.kind == .normal && !entry.data.isEmpty { machine.apply(entry) }
        appliedIndex = entry.index
        appliedBytesSinceSnapshot += entry.sizeBytes
        guard let waiter = proposals.removeValue(forKey: entry.index) else { return }
        // The proposal is what got committed only if the term matches (paper §5.3: same index
        // and term, same entry).
        if waiter.term == entry.term {
            waiter.finish(.success(AppliedProposal(index: entry.index, read: waiter.reading?(machine, entry.index))))
        } else {
            waiter.finish(.failure(RaftNodeError.proposalDropped(index: entry.index)))
        }
    }

    private func confirmRead(_ readState: ReadState) {
        var reader = LittleEndianReader(readState.context[...])
        guard let node = try? reader.readUInt64(), node == id, let readID = try? reader.readUInt64() else { return }
        reads[readID]?.index = readState.index
    }

    /// Resumes reads whose index the state machine has reached (thesis §6.4 step 4).
    private func releaseReads() {
        for (readID, waiter) in reads {
            if let index = waiter.index, index <= appliedIndex {
                reads.removeValue(forKey: readID)
                waiter.continuation.resume()
            }
        }
    }

    /// Fails proposals whose deadline has passed; each tick checks.
    func expireProposals() {
        guard !proposals.isEmpty else { return }
        let now = ContinuousClock.now
        for (index, waiter) in proposals where waiter.deadline <= now {
            proposals.removeValue(forKey: index)
            waiter.finish(.failure(RaftNodeError.proposalTimedOut(index: index)))
        }
    }

    /// Fails reads that have not been confirmed within the timeout; the core drops reads when
    /// leadership changes, and says so to nobody.
    func expireReads() {
        for (readID, waiter) in reads where waiter.index == nil && elapsedTicks - waiter.issuedAtTick >= options.readTimeoutTicks {
            reads.removeValue(forKey: readID)
            waiter.continuation.resume(throwing: RaftNodeError.readTimedOut)
        }
    }
}
