extension RaftNode {
    /// Handles what the caller's step of the core made ready. A leader's Ready of an unchanged
    /// term waits for nothing (see `handleWithoutWaiting`) and is handled here, in the turn of
    /// the actor that made it; any other starts the Ready loop, unless it is already running:
    /// a running loop picks up whatever the caller just did, since it asks the core for more
    /// before it stops. (A task per Ready was a handoff to another pool thread twice per batch
    /// of writes on a leader: once for its proposals, once for its followers' answers.)
    func scheduleReadyLoop() {
        publishLeader()
        while !readyLoopRunning, terminalError == nil, core.hasReady {
            let ready = core.ready()
            guard ready.messagesMayPrecedePersist else {
                readyLoopRunning = true
                readyLoop = Task { await self.runReadyLoop(startingWith: ready) }
                return
            }
            do {
                try handleWithoutWaiting(ready)
            } catch {
                stopOnStorageFailure(error)
                return
            }
        }
        watchDurabilityIfNeeded()
    }

    private func runReadyLoop(startingWith first: Ready) async {
        defer { readyLoopRunning = false }
        var next: Ready? = first
        while let ready = next {
            do {
                if ready.messagesMayPrecedePersist {
                    try handleWithoutWaiting(ready)
                } else {
                    try await handleInOrder(ready)
                }
            } catch {
                stopOnStorageFailure(error)
                return
            }
            next = terminalError == nil && core.hasReady ? core.ready() : nil
        }
    }

    /// Storage can no longer be trusted to hold what we promise (fsyncgate): stop rather than
    /// answer anyone from a state that may not be durable.
    private func stopOnStorageFailure(_ error: any Error) {
        if terminalError == nil { terminate(.storageFailed(String(describing: error))) }
    }

    /// Submits what `ready` asks to persist: the snapshot marker, entries and hard state in
    /// one WAL batch (a snapshot's file is written before). When only the commit index moved
    /// (mustSync false) the write is queued but neither waited for (etcd raft) nor synced on
    /// its own: it goes to disk with the next batch that must be durable.
    private func submitWrites(of ready: Ready) throws -> WriteAheadLog.Ticket? {
        guard ready.snapshot != nil || !ready.entries.isEmpty || ready.hardState != nil else { return nil }
        return try storage.submit(hardState: ready.hardState, entries: ready.entries, snapshot: ready.snapshot, mustSync: ready.mustSync)
    }

    /// A leader's Ready of an unchanged term (`messagesMayPrecedePersist`): its appends go
    /// first, so that its followers' fsyncs overlap its own, and it does not wait for its own
    /// sync (etcd raft's asynchronous storage writes): its entries count toward a majority once
    /// the WAL confirms them (`watchDurability`), and what the followers committed meanwhile is
    /// applied now. Waiting held every next batch of appends and every answer behind the
    /// leader's fsync: with its WAL on tmpfs, 16 writers ran about 20 % faster.
    private func handleWithoutWaiting(_ ready: Ready) throws {
        if !ready.messages.isEmpty { transport.send(ready.messages) }
        let ticket = try submitWrites(of: ready)
        for entry in ready.committedEntries { apply(entry) }
        for readState in ready.readStates { confirmRead(readState) }
        releaseReads()
        if let ticket, let last = ready.entries.last {
            watchDurability(of: ticket, through: LogPosition(index: last.index, term: last.term))
        }
        core.advance(ready, durable: false)
        try compactIfDue()
    }

    /// Compacts once enough has been applied since the last snapshot: the snapshot is taken
    /// here, between an advance and the next ready, and written beside the loop. Its file's
    /// fsync, its directory's and its WAL record's took up to 230 ms under load (a new file
    /// costs a journal commit), and every write of the group waited for them while the loop
    /// did (etcd writes its snapshots beside its loop too). The log is compacted when the
    /// record is submitted, only up to what is applied here, which is stable.
    private func compactIfDue() throws {
        let snapshotIndex = storage.snapshotMetadata.index
        if compaction == nil, appliedIndex > snapshotIndex, appliedIndex >= snapshotIndex + options.snapshotEveryAppliedEntries
            || appliedBytesSinceSnapshot >= options.snapshotEveryAppliedBytes
        {
            let snapshot = try core.snapshot(at: appliedIndex, data: machine.snapshot())
            appliedBytesSinceSnapshot = 0
            compaction = Task { await self.compact(to: snapshot) }
        }
    }

    /// A `Ready` that must be durable before its messages go (a follower's, a candidate's, a
    /// leader's whose term or vote changed), in the order it prescribes: persist, send, apply,
    /// advance, then compact if due.
    private func handleInOrder(_ ready: Ready) async throws {
        // 1. Persist: a leader's snapshot's file first (its fsync off this actor), then the WAL.
        if let snapshot = ready.snapshot {
            // One snapshot file in the making at a time: the storage names the last one written.
            await compaction?.value
            // A compaction that failed has stopped the node: nothing more to write.
            if terminalError != nil { return }
            try await storage.writeSnapshotFile(snapshot)
        }
        let ticket = try submitWrites(of: ready)
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
        var mustWaitFor = ready.mustSync ? ticket : nil
        if let unconfirmed = unconfirmedLeaderWrites.last?.ticket, mustWaitFor.map({ $0 < unconfirmed }) ?? true { mustWaitFor = unconfirmed }
        if let mustWaitFor { try await storage.waitUntilDurable(mustWaitFor) }
        if terminalError != nil { return }
        // Every unconfirmed write is durable now (the wait covered the latest, and tickets
        // become durable in order); a former leader's core has no use for the report.
        unconfirmedLeaderWrites.removeAll()
        // 2. Send: the messages promise what was just persisted.
        if !ready.messages.isEmpty { transport.send(ready.messages) }
        // 3. Apply the rest.
        if let snapshot = ready.snapshot { try install(snapshot) }
        for entry in ready.committedEntries.dropFirst(appliedEarly) { apply(entry) }
        for readState in ready.readStates { confirmRead(readState) }
        releaseReads()
        core.advance(ready)
        try compactIfDue()
    }

    /// Records the leader's write behind `ticket`, not yet durable; `step` reports it to the
    /// core once the WAL has made it durable, or the watch does when the commit waits for it.
    private func watchDurability(of ticket: WriteAheadLog.Ticket, through last: LogPosition) {
        unconfirmedLeaderWrites.append((ticket, last))
        watchDurabilityIfNeeded()
    }

    /// Reports the leader writes the WAL has made durable to the core, oldest first, and
    /// forgets them. A write the WAL failed to make durable stops the node, as a failure in
    /// the loop does: the leader waits for none of its syncs while its followers carry the
    /// commit, and with no write after the failed one (which would be refused), nothing else
    /// would notice, and it went on leading from a disk that no longer keeps what it is given.
    func reportDurableLeaderWrites() {
        var durable = 0
        do {
            while durable < unconfirmedLeaderWrites.count, try storage.isDurable(unconfirmedLeaderWrites[durable].ticket) { durable += 1 }
        } catch {
            stopOnStorageFailure(error)
            return
        }
        guard durable > 0 else { return }
        let last = unconfirmedLeaderWrites[durable - 1].last
        unconfirmedLeaderWrites.removeFirst(durable)
        core.persisted(through: last)
    }

    /// Starts a task that reports the leader's unconfirmed writes to the core as soon as the
    /// WAL has made them durable, if the commit waits for them (`RaftCore.commitAwaitsOwnSync`:
    /// a group of one, or a follower slow or gone). Otherwise the followers' answers carry the
    /// commit, and the next step reports the syncs: a task woken by every sync of the leader's
    /// was a handoff to another pool thread per batch of writes.
    private func watchDurabilityIfNeeded() {
        guard durabilityWatch == nil, terminalError == nil, !unconfirmedLeaderWrites.isEmpty, core.commitAwaitsOwnSync else { return }
        durabilityWatch = Task { await self.reportDurability() }
    }

    private func reportDurability() async {
        defer { durabilityWatch = nil }
        while terminalError == nil, let oldest = unconfirmedLeaderWrites.first, core.commitAwaitsOwnSync {
            do {
                try await storage.waitUntilDurable(oldest.ticket)
            } catch {
                stopOnStorageFailure(error)
                return
            }
            if terminalError != nil { return }
            reportDurableLeaderWrites()
            scheduleReadyLoop()
        }
    }

    /// Writes `snapshot` and compacts the log to it; a failure stops the node, as one in the
    /// loop does.
    private func compact(to snapshot: Snapshot) async {
        do {
            try await storage.compact(to: snapshot)
        } catch {
            stopOnStorageFailure(error)
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
