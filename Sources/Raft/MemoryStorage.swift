/// A `LogStorage` held in memory (etcd raft's `MemoryStorage`): the log after the latest
/// snapshot, the snapshot itself and the hard state. Tests and simulations use it alone; a
/// real node keeps one as the cache in front of its write-ahead log, and rebuilds it from disk
/// at start.
public final class MemoryStorage: LogStorage {
    /// The hard state last set.
    public private(set) var hardState: HardState
    /// The latest snapshot, applied or made locally.
    public private(set) var latestSnapshot: Snapshot
    /// The entries after the snapshot, consecutive.
    private var storedEntries: [Entry]

    /// A storage for a brand-new group whose initial members are `conf`, holding its
    /// `BootstrapLog`; with no members, an empty storage for a server about to join a group.
    public convenience init(bootstrap conf: ConfState) {
        let log = BootstrapLog(members: conf)
        self.init(hardState: log.hardState, entries: log.entries)
    }

    /// A storage holding what a node recovered from disk.
    public init(snapshot: Snapshot = Snapshot(), hardState: HardState = HardState(), entries: [Entry] = []) {
        precondition(entries.first.map { $0.index == snapshot.metadata.index + 1 } ?? true,
                     "entries must start right after the snapshot")
        self.latestSnapshot = snapshot
        self.hardState = hardState
        self.storedEntries = entries
    }

    /// The latest snapshot's metadata.
    public var snapshotMetadata: SnapshotMetadata { latestSnapshot.metadata }

    /// The snapshot's index plus one.
    public var firstIndex: UInt64 { latestSnapshot.metadata.index + 1 }

    /// The last entry's index, or the snapshot's.
    public var lastIndex: UInt64 { latestSnapshot.metadata.index + UInt64(storedEntries.count) }

    /// The term at `index`.
    public func term(at index: UInt64) throws(LogStorageError) -> UInt64 {
        let snapshotIndex = latestSnapshot.metadata.index
        if index < snapshotIndex { throw .compacted }
        if index == snapshotIndex { return latestSnapshot.metadata.term }
        if index > lastIndex { throw .unavailable }
        return storedEntries[Int(index - snapshotIndex - 1)].term
    }

    /// The entries `lowIndex ..< highIndex`, at most `maxBytes` of them but at least one.
    public func entries(from lowIndex: UInt64, upTo highIndex: UInt64, maxBytes: Int) throws(LogStorageError) -> [Entry] {
        if lowIndex < firstIndex { throw .compacted }
        if highIndex > lastIndex + 1 { throw .unavailable }
        let start = Int(lowIndex - firstIndex)
        let end = Int(highIndex - firstIndex)
        var total = 0
        var stop = start
        while stop < end {
            total += storedEntries[stop].sizeBytes
            if total > maxBytes && stop > start { break }
            stop += 1
        }
        return Array(storedEntries[start..<stop])
    }

    /// The latest snapshot.
    public func snapshot() throws(LogStorageError) -> Snapshot {
        latestSnapshot
    }

    /// Records the hard state of a `Ready`.
    public func setHardState(_ state: HardState) {
        hardState = state
    }

    /// Appends entries, first dropping any stored entries from the first new index on (a
    /// follower's conflicting suffix, paper §5.3). Entries already compacted are skipped.
    public func append(_ newEntries: [Entry]) {
        guard let first = newEntries.first else { return }
        precondition(first.index <= lastIndex + 1, "gap: appending \(first.index) after \(lastIndex)")
        let skip = first.index < firstIndex ? Int(firstIndex - first.index) : 0
        guard skip < newEntries.count else { return }
        let start = first.index + UInt64(skip)
        storedEntries.removeSubrange(Int(start - firstIndex)...)
        storedEntries.append(contentsOf: newEntries[skip...])
    }

    /// Replaces everything with a snapshot received from the leader: the log before and at its
    /// index is covered by it and the log after it is not known to match (etcd's `ApplySnapshot`).
    public func applySnapshot(_ snapshot: Snapshot) throws(LogStorageError) {
        guard snapshot.metadata.index > latestSnapshot.metadata.index else { throw .snapshotOutOfDate }
        latestSnapshot = snapshot
        storedEntries = []
    }

    /// Keeps a snapshot the application made at an index it has applied, and drops the entries
    /// it covers (paper §7; etcd's `CreateSnapshot` then `Compact`).
    public func compact(to snapshot: Snapshot) throws(LogStorageError) {
        let index = snapshot.metadata.index
        guard index > latestSnapshot.metadata.index else { throw .snapshotOutOfDate }
        guard index <= lastIndex else { throw .unavailable }
        let termAtIndex = try term(at: index)
        precondition(termAtIndex == snapshot.metadata.term, "snapshot term differs from the log's")
        storedEntries.removeFirst(Int(index - latestSnapshot.metadata.index))
        latestSnapshot = snapshot
    }

    /// Persists what a `Ready` asks, in the required order: snapshot, entries, hard state.
    public func persist(_ ready: Ready) {
        if let snapshot = ready.snapshot {
            // A snapshot in a Ready is always newer than what is stored: the core only
            // restores one beyond its commit index.
            do { try applySnapshot(snapshot) } catch { preconditionFailure("stale snapshot in Ready: \(error)") }
        }
        append(ready.entries)
        if let state = ready.hardState { hardState = state }
    }
}
