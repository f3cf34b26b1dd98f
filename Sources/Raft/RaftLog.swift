/// The replicated log as the core sees it: the persisted part (read through `LogStorage`), the
/// unstable part not yet persisted, and the commit and applied indexes (etcd raft's `raftLog`).
struct RaftLog {
    let storage: any LogStorage
    var unstable: UnstableLog
    /// The highest index known to be committed (paper Figure 2, commitIndex).
    private(set) var committed: UInt64
    /// The highest index the application has applied (paper Figure 2, lastApplied).
    private(set) var applied: UInt64

    init(storage: any LogStorage, committed: UInt64, applied: UInt64) {
        self.storage = storage
        self.unstable = UnstableLog(snapshot: nil, entries: [], offset: storage.lastIndex + 1)
        let snapshotIndex = storage.firstIndex - 1
        precondition(committed <= storage.lastIndex,
                     "commit index \(committed) beyond the last persisted index \(storage.lastIndex)")
        self.committed = max(committed, snapshotIndex)
        self.applied = min(max(applied, snapshotIndex), self.committed)
    }

    var firstIndex: UInt64 { unstable.firstIndexIfKnown ?? storage.firstIndex }
    var lastIndex: UInt64 { unstable.lastIndexIfKnown ?? storage.lastIndex }
    var lastTerm: UInt64 { termOrZero(at: lastIndex) }

    /// The last index the application has persisted and that still belongs to the log; zero
    /// while a received snapshot waits to be persisted, since the old log may not match it.
    var persistedLastIndex: UInt64 {
        if unstable.snapshot != nil { return 0 }
        return min(storage.lastIndex, unstable.offset - 1)
    }

    /// The term at `index`, valid for `firstIndex - 1 ... lastIndex`.
    func term(at index: UInt64) throws(LogStorageError) -> UInt64 {
        if index + 1 < firstIndex { throw .compacted }
        if index > lastIndex { throw .unavailable }
        if let term = unstable.term(at: index) { return term }
        return try storage.term(at: index)
    }

    /// The term at `index`, or zero when it is compacted or beyond the log; zero never matches
    /// a real entry after index 0.
    func termOrZero(at index: UInt64) -> UInt64 {
        (try? term(at: index)) ?? 0
    }

    func matchTerm(index: UInt64, term: UInt64) -> Bool {
        guard let actual = try? self.term(at: index) else { return false }
        return actual == term
    }

    /// Whether a candidate's log is at least as up to date as ours (paper §5.4.1).
    func isUpToDate(lastIndex candidateIndex: UInt64, lastTerm candidateTerm: UInt64) -> Bool {
        let ourTerm = lastTerm
        return candidateTerm > ourTerm || (candidateTerm == ourTerm && candidateIndex >= lastIndex)
    }

    /// Appends entries made by this node as leader; returns the new last index.
    @discardableResult
    mutating func append(_ entries: [Entry]) -> UInt64 {
        guard let first = entries.first else { return lastIndex }
        precondition(first.index > committed, "appending \(first.index) at or below commit \(committed)")
        unstable.truncateAndAppend(entries)
        return lastIndex
    }

    /// The follower's side of AppendEntries (paper §5.3, Figure 2 receiver steps 2-5).
    /// Returns nil when `prevIndex`/`prevTerm` do not match; otherwise the last new index and the
    /// index from which the log was replaced (zero if every entry was already there).
    mutating func maybeAppend(prevIndex: UInt64, prevTerm: UInt64, leaderCommit: UInt64,
                              entries: [Entry]) -> (lastNewIndex: UInt64, replacedFrom: UInt64)? {
        guard matchTerm(index: prevIndex, term: prevTerm) else { return nil }
        let lastNewIndex = prevIndex + UInt64(entries.count)
        let conflict = findConflict(entries)
        if conflict != 0 {
            precondition(conflict > committed, "entry \(conflict) conflicts with committed entry \(committed)")
            append(Array(entries[Int(conflict - prevIndex - 1)...]))
        }
        commit(to: min(leaderCommit, lastNewIndex))
        return (lastNewIndex, conflict)
    }

    /// The first index among `entries` that is missing from the log or holds another term;
    /// zero if all are present.
    func findConflict(_ entries: [Entry]) -> UInt64 {
        for entry in entries where !matchTerm(index: entry.index, term: entry.term) {
            return entry.index
        }
        return 0
    }

    /// The last index at or before `index` whose term is at most `term`, with that term: where
    /// the log may still match a log whose entry at `index` has `term`. Zero term when unknown
    /// (etcd raft's `findConflictByTerm`).
    func findConflictByTerm(index: UInt64, term: UInt64) -> (index: UInt64, term: UInt64) {
        var candidate = index
        while true {
            guard let found = try? self.term(at: candidate) else { return (candidate, 0) }
            if found <= term || candidate == 0 { return (candidate, found) }
            candidate -= 1
        }
    }

    /// The entries `lowIndex ..< highIndex`, at most `maxBytes` (but at least one).
    func entries(from lowIndex: UInt64, upTo highIndex: UInt64, maxBytes: Int) throws(LogStorageError) -> [Entry] {
        precondition(lowIndex <= highIndex, "bad range \(lowIndex)..<\(highIndex)")
        if lowIndex < firstIndex { throw .compacted }
        precondition(highIndex <= lastIndex + 1, "range \(lowIndex)..<\(highIndex) beyond last index \(lastIndex)")
        if lowIndex == highIndex { return [] }
        var result: [Entry] = []
        var budgetBytes = maxBytes
        if lowIndex < unstable.offset {
            let persistedEnd = min(highIndex, unstable.offset)
            result = try storage.entries(from: lowIndex, upTo: persistedEnd, maxBytes: maxBytes)
            if UInt64(result.count) < persistedEnd - lowIndex { return result }
            for entry in result { budgetBytes -= entry.sizeBytes }
        }
        if highIndex > unstable.offset {
            for entry in unstable.slice(from: max(lowIndex, unstable.offset), upTo: highIndex) {
                budgetBytes -= entry.sizeBytes
                if budgetBytes < 0 && !result.isEmpty { break }
                result.append(entry)
            }
        }
        return result
    }

    /// The latest snapshot: one received and not yet persisted, or the persisted one.
    func snapshot() throws(LogStorageError) -> Snapshot {
        if let pending = unstable.snapshot { return pending }
        return try storage.snapshot()
    }

    mutating func commit(to index: UInt64) {
        guard index > committed else { return }
        precondition(index <= lastIndex, "commit \(index) beyond last index \(lastIndex): log lost or corrupted")
        committed = index
    }

    mutating func applied(to index: UInt64) {
        guard index > applied else { return }
        precondition(index <= committed, "applied \(index) beyond commit \(committed)")
        applied = index
    }

    /// Whether the application has committed entries to apply (none while a snapshot waits).
    var hasCommittedEntriesToApply: Bool {
        unstable.snapshot == nil && committed > max(applied, firstIndex - 1)
    }

    func committedEntriesToApply(maxBytes: Int) -> [Entry] {
        guard hasCommittedEntriesToApply else { return [] }
        let lowIndex = max(applied + 1, firstIndex)
        do {
            return try entries(from: lowIndex, upTo: committed + 1, maxBytes: maxBytes)
        } catch {
            preconditionFailure("committed entries \(lowIndex)...\(committed) unreadable: \(error)")
        }
    }

    /// Installs a snapshot received from the leader (paper §7): the log is replaced by it.
    mutating func restore(_ snapshot: Snapshot) {
        precondition(snapshot.metadata.index > committed, "restoring a snapshot at or below the commit index")
        committed = snapshot.metadata.index
        unstable.restore(snapshot)
    }

    mutating func stable(to index: UInt64, term: UInt64) {
        unstable.stable(to: index, term: term)
    }

    mutating func stableSnapshot(to index: UInt64) {
        unstable.stableSnapshot(to: index)
    }
}
