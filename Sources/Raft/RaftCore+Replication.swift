extension RaftCore {
    // MARK: - Proposals

    /// Appends `data` to the log as a new entry, to be replicated with the next `Ready`.
    /// Returns where it went: it is committed once the entry at that index has that term.
    ///
    /// Fails fast on a node that is not the leader, naming the leader it knows of, so the
    /// caller can retry there (thesis §6.2: clients find the leader).
    @discardableResult
    public mutating func propose(_ data: [UInt8]) throws(RaftError) -> LogPosition {
        try checkCanPropose()
        try checkUncommitted(adding: data.count)
        let position = appendAsLeader([Entry(term: term, index: 0, kind: .normal, data: data)])
        leaderState.noteUncommitted(index: position.index, bytes: data.count)
        return position
    }

    /// Appends several entries at once; returns the position of the first.
    @discardableResult
    public mutating func propose(contentsOf batch: [[UInt8]]) throws(RaftError) -> LogPosition? {
        try checkCanPropose()
        guard !batch.isEmpty else { return nil }
        try checkUncommitted(adding: batch.reduce(0) { $0 + $1.count })
        let first = log.lastIndex + 1
        appendAsLeader(batch.map { Entry(term: term, index: 0, kind: .normal, data: $0) })
        for (offset, data) in batch.enumerated() {
            leaderState.noteUncommitted(index: first + UInt64(offset), bytes: data.count)
        }
        return LogPosition(index: first, term: term)
    }

    /// Refuses `bytes` more of proposals when the leader already holds uncommitted ones and
    /// together they would pass `config.maxUncommittedBytes`.
    func checkUncommitted(adding bytes: Int) throws(RaftError) {
        let limit = config.maxUncommittedBytes
        let held = leaderState.uncommittedBytes
        guard limit > 0, held > 0, held + bytes > limit else { return }
        throw .tooManyUncommitted(bytes: held, limit: limit)
    }

    func checkCanPropose() throws(RaftError) {
        switch roleState {
        case .leader(let state):
            if state.transferTarget != 0 { throw .leadershipTransferInProgress(target: state.transferTarget) }
        default:
            throw .notLeader(leaderHint: leader)
        }
    }

    /// Assigns indexes and the current term, appends, and lets membership changes take effect
    /// at once (thesis §4.1). Returns the position of the first entry.
    @discardableResult
    mutating func appendAsLeader(_ newEntries: [Entry]) -> LogPosition {
        var entries = newEntries
        let first = log.lastIndex + 1
        for offset in entries.indices {
            entries[offset].term = term
            entries[offset].index = first + UInt64(offset)
        }
        log.append(entries)
        var membershipChanged = false
        for entry in entries where entry.kind == .configChange {
            membership.record(entry)
            membershipChanged = true
        }
        leaderState.needsBroadcast = true
        if membershipChanged { membershipDidChange() }
        return LogPosition(index: first, term: term)
    }

    // MARK: - Leader: sending

    /// Sends the next entries to `peer` if its flow control allows; sends a snapshot instead
    /// when they have been compacted. Returns whether a message went out. `mayHold` false
    /// sends a partial append even while one is in flight (`Progress.holdsPartialAppends`).
    @discardableResult
    mutating func sendAppend(to peer: NodeID, sendIfEmpty: Bool = true, mayHold: Bool = true) -> Bool {
        guard let progress = leaderState.progress[peer], peer != id, !progress.isPaused else { return false }
        let prevIndex = progress.next - 1
        let lastIndex = log.lastIndex
        let prevTerm: UInt64
        let entries: [Entry]
        do {
            prevTerm = try log.term(at: prevIndex)
            entries = try log.entries(from: progress.next, upTo: lastIndex + 1, maxBytes: config.maxAppendBytes)
        } catch .compacted {
            return sendSnapshot(to: peer)
        } catch {
            preconditionFailure("leader \(id) cannot read its log at \(prevIndex): \(error)")
        }
        if entries.isEmpty && !sendIfEmpty { return false }
        if mayHold && prevIndex + UInt64(entries.count) == lastIndex && progress.holdsPartialAppends {
            leaderState.progress[peer]?.holdingAppend = true
            return false
        }
        send(to: peer, .append(AppendRequest(prevLogIndex: prevIndex, prevLogTerm: prevTerm,
                                             entries: entries, commit: log.committed)))
        leaderState.progress[peer]?.sentEntries(count: entries.count, lastIndex: prevIndex + UInt64(entries.count))
        return true
    }

    /// Sends appends to every peer: new entries, or just the commit index.
    mutating func broadcastAppend(sendIfEmpty: Bool = true) {
        for peer in leaderState.peers {
            sendAppend(to: peer, sendIfEmpty: sendIfEmpty)
        }
    }

    mutating func broadcastHeartbeat() {
        let round = leaderState.reads.lastRound
        for peer in leaderState.peers {
            // Never tell a follower a commit index beyond what it is known to hold (etcd raft).
            let commit = min(leaderState.progress[peer]?.match ?? 0, log.committed)
            send(to: peer, .heartbeat(Heartbeat(commit: commit, readRound: round)))
        }
    }

    // MARK: - Leader: answers

    mutating func handleAppendResponse(from peer: NodeID, _ response: AppendResponse) {
        if response.rejected {
            // Fast back-off (paper §5.3): the follower named the last index where its log may
            // match ours; skip to the last entry of ours whose term is not above its term there.
            var hint = response.hintIndex
            if response.hintTerm > 0 {
                hint = log.findConflictByTerm(index: response.hintIndex, term: response.hintTerm).index
            }
            if leaderState.progress[peer]?.reject(at: response.index, hint: hint) == true {
                sendAppend(to: peer)
            }
            return
        }
        // An acknowledgement beyond our log can only come from a broken peer.
        guard response.index <= log.lastIndex else { return }
        let firstIndex = log.firstIndex
        guard let outcome = leaderState.progress[peer]?.acknowledge(upTo: response.index, leaderFirstIndex: firstIndex),
              outcome.updated else { return }
        if maybeCommit() {
            guard isLeader else { return }
            broadcastAppend()
        } else if outcome.wasPaused {
            sendAppend(to: peer)
        }
        // Fill the pipeline up to the inflight bound.
        while sendAppend(to: peer, sendIfEmpty: false) {}
        if leaderState.transferTarget == peer && leaderState.progress[peer]?.match == log.lastIndex {
            sendTimeoutNow(to: peer)
        }
    }

    mutating func handleHeartbeatResponse(from peer: NodeID, _ response: HeartbeatResponse) {
        guard let state = leaderState.progress[peer]?.heartbeatAnswered(readRound: response.readRound) else { return }
        releaseConfirmedReads()
        guard isLeader else { return }
        if case .snapshot = state {
            resendSnapshotChunk(to: peer)
        } else if let match = leaderState.progress[peer]?.match, match < log.lastIndex {
            sendAppend(to: peer)
        }
    }

    /// Commits the highest index a majority holds, if its entry is of the current term: a
    /// leader never commits an entry of an earlier term by counting replicas (paper §5.4.2,
    /// Figure 8); those commit along with it. Returns whether the commit index moved; the node
    /// may no longer be leader afterwards (it removed itself).
    @discardableResult
    mutating func maybeCommit() -> Bool {
        let voters = membership.current.voters
        let index = leaderState.quorumMatchIndex(voters: voters)
        guard index > log.committed, log.termOrZero(at: index) == term else { return false }
        log.commit(to: index)
        didCommitAsLeader()
        return true
    }

    /// What a leader does once its commit index moves.
    mutating func didCommitAsLeader() {
        leaderState.releaseUncommitted(upTo: log.committed)
        // Reads that waited for the first commit of this term can now take a read index
        // (thesis §6.4 step 1).
        if !leaderState.reads.waitingForCommit.isEmpty {
            let waiting = leaderState.reads.waitingForCommit
            leaderState.reads.waitingForCommit = []
            for read in waiting { handleReadRequest(from: read.requester, context: read.context) }
        }
        // A leader that removed itself steps down once the removal is committed (thesis
        // §4.2.2), handing over to the most caught-up voter so the group need not wait for an
        // election timeout.
        if !isPromotable && log.committed >= membership.currentIndex {
            if let successor = mostCaughtUpVoter(), leaderState.progress[successor]?.match == log.lastIndex {
                sendTimeoutNow(to: successor)
            }
            becomeFollower(term: term, leader: 0)
        }
    }

    private func mostCaughtUpVoter() -> NodeID? {
        let state = leaderState
        return membership.current.voters.sorted().max { (state.progress[$0]?.match ?? 0) < (state.progress[$1]?.match ?? 0) }
    }

    // MARK: - Follower

    /// AppendEntries receiver (paper Figure 2, §5.3).
    mutating func handleAppend(from leaderID: NodeID, _ request: AppendRequest) {
        if request.prevLogIndex < log.committed {
            // Old news (a duplicate or a reordered message): everything up to our commit index
            // matches the leader's log already.
            send(to: leaderID, .appendResponse(AppendResponse(index: log.committed)))
            return
        }
        if let (lastNewIndex, replacedFrom) = log.maybeAppend(
            prevIndex: request.prevLogIndex, prevTerm: request.prevLogTerm,
            leaderCommit: request.commit, entries: request.entries) {
            if replacedFrom != 0 {
                // Overwritten configuration entries no longer count; new ones do at once
                // (thesis §4.1).
                membership.truncate(from: replacedFrom)
                for entry in request.entries where entry.index >= replacedFrom && entry.kind == .configChange {
                    membership.record(entry)
                }
            }
            send(to: leaderID, .appendResponse(AppendResponse(index: lastNewIndex)))
            return
        }
        // Reject with a hint: the last index at or before the probe where our term is not
        // above the leader's term there, with our term at it (paper §5.3's optimisation).
        let hint = log.findConflictByTerm(index: min(request.prevLogIndex, log.lastIndex), term: request.prevLogTerm)
        send(to: leaderID, .appendResponse(AppendResponse(
            index: request.prevLogIndex, rejected: true, hintIndex: hint.index, hintTerm: hint.term)))
    }

    mutating func handleHeartbeat(from leaderID: NodeID, _ heartbeat: Heartbeat) {
        log.commit(to: heartbeat.commit)
        send(to: leaderID, .heartbeatResponse(HeartbeatResponse(readRound: heartbeat.readRound)))
    }
}
