extension RaftCore {
    /// Whether `ready()` has something to hand out. False while a `Ready` is being handled.
    public var hasReady: Bool {
        if readyInProgress { return false }
        if !outbox.isEmpty || !readStates.isEmpty { return true }
        if !log.unstable.entries.isEmpty || log.unstable.snapshot != nil { return true }
        if hardState != persistedHardState || softState != reportedSoftState { return true }
        if case .leader(let state) = roleState, state.needsBroadcast { return true }
        return log.hasCommittedEntriesToApply
    }

    /// Hands out what to persist, send and apply (see `Ready` for the order). Call
    /// `advance(_:)` with it once done; no other `Ready` is handed out until then.
    public mutating func ready() -> Ready {
        precondition(!readyInProgress, "ready() called again before advance()")
        // Batching: the entries proposed since the last Ready go out together, in as few
        // appends as the size limit allows, as many as the inflight window allows.
        if case .leader(let state) = roleState, state.needsBroadcast {
            leaderState.needsBroadcast = false
            for peer in leaderState.peers {
                while sendAppend(to: peer, sendIfEmpty: false) {}
            }
        }
        precondition(log.unstable.entries.isEmpty || log.unstable.offset >= log.storage.firstIndex,
                     "the application compacted entries \(log.unstable.offset)..<\(log.storage.firstIndex) before they were stable")
        let currentHardState = hardState
        let currentSoftState = softState
        let entries = log.unstable.entries
        let snapshot = log.unstable.snapshot
        let ready = Ready(
            softState: currentSoftState == reportedSoftState ? nil : currentSoftState,
            hardState: currentHardState == persistedHardState ? nil : currentHardState,
            entries: entries,
            snapshot: snapshot,
            committedEntries: log.committedEntriesToApply(maxBytes: config.maxApplyBytesPerReady),
            messages: outbox,
            readStates: readStates,
            // A lost commit index is learnt again from the leader; a lost term, vote or entry
            // could make this node vote twice or forget what it acknowledged (etcd raft).
            mustSync: !entries.isEmpty || snapshot != nil
                || currentHardState.term != persistedHardState.term
                || currentHardState.vote != persistedHardState.vote,
            // Every message since the last Ready is then a leader's of this term: a node
            // becomes leader only through a term and vote of its own, and leaves it only for a
            // higher term. A follower's acknowledgement or vote must wait for the disk.
            messagesMayPrecedePersist: isLeader && snapshot == nil
                && currentHardState.term == persistedHardState.term
                && currentHardState.vote == persistedHardState.vote)
        outbox = []
        readStates = []
        reportedSoftState = currentSoftState
        readyInProgress = true
        return ready
    }

    /// Acknowledges that `ready` was handled: its writes are durable (or at least ordered
    /// before anything that depends on them), its messages sent, its committed entries applied.
    ///
    /// `durable` false: the writes are submitted in order to storage that serves them at once,
    /// but the disk has not confirmed them; report that with `persisted(through:)`. Only a
    /// leader's `Ready` whose messages may precede persistence may be advanced so (etcd raft's
    /// asynchronous storage writes): the leader counts itself toward a majority only for what
    /// the disk confirmed, so an entry it calls committed is on a majority of disks, while its
    /// next `Ready` (new appends, entries the followers committed) need not wait for its sync.
    /// Before anything else is advanced as durable, the driver must have waited for every write
    /// submitted earlier.
    public mutating func advance(_ ready: Ready, durable: Bool = true) {
        precondition(readyInProgress, "advance() without ready()")
        precondition(durable || ready.messagesMayPrecedePersist, "only a leader's Ready of an unchanged term may be advanced before it is durable")
        readyInProgress = false
        if durable {
            undurableTail = nil
        } else if let last = ready.entries.last {
            if undurableTail == nil { durableIndex = log.persistedLastIndex }
            undurableTail = LogPosition(index: last.index, term: last.term)
        }
        if let state = ready.hardState { persistedHardState = state }
        if let snapshot = ready.snapshot {
            log.stableSnapshot(to: snapshot.metadata.index)
            log.applied(to: snapshot.metadata.index)
        }
        // A follower may have replaced the tail of these entries while they were being
        // persisted; the part that still stands is stable.
        if let stillStanding = ready.entries.last(where: { log.unstable.term(at: $0.index) == $0.term }) {
            log.stable(to: stillStanding.index, term: stillStanding.term)
        }
        if let last = ready.committedEntries.last {
            log.applied(to: last.index)
        }
        // The application may have compacted its storage since the last Ready.
        membership.compact(to: log.firstIndex - 1)
        countOwnDurableEntries()
    }

    /// The disk confirmed this node's log through `position` (see `advance(_:durable:)`).
    /// A position no longer in the log (replaced since) confirms nothing.
    public mutating func persisted(through position: LogPosition) {
        guard let tail = undurableTail, log.matchTerm(index: position.index, term: position.term) else { return }
        if position.index >= tail.index {
            undurableTail = nil
        } else {
            durableIndex = max(durableIndex, position.index)
        }
        countOwnDurableEntries()
    }

    /// Whether this leader's commit waits for its own disk: its unconfirmed entries, counted
    /// as its vote, would commit more than its followers' votes and its confirmed entries do.
    /// While this holds the driver must report each sync promptly (`persisted(through:)`);
    /// while it does not, a later step may, for the followers carry the commit without it.
    public var commitAwaitsOwnSync: Bool {
        guard isLeader, let tail = undurableTail else { return false }
        let index = leaderState.quorumMatchIndex(voters: membership.current.voters, taking: id, at: tail.index)
        return index > log.committed && log.termOrZero(at: index) == term
    }

    /// The last index this node has on its disk and in its log.
    var selfDurableIndex: UInt64 {
        let persisted = log.persistedLastIndex
        return undurableTail == nil ? persisted : min(persisted, durableIndex)
    }

    /// The leader counts itself toward a majority only for what it has on disk.
    private mutating func countOwnDurableEntries() {
        guard isLeader else { return }
        let durable = selfDurableIndex
        if leaderState.progress[id].map({ $0.match < durable }) == true {
            leaderState.progress[id]?.match = durable
            if maybeCommit(), isLeader { broadcastAppend() }
        }
    }
}
