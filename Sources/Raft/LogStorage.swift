/// Why the persisted log cannot answer a read.
public enum LogStorageError: Error, Sendable, Hashable {
    /// The index is before the first index: it was compacted into the snapshot.
    case compacted
    /// The index is after the last index.
    case unavailable
    /// A snapshot offered for compaction is not newer than the one held.
    case snapshotOutOfDate
    /// The snapshot is being made and cannot be read yet; the core tries again later
    /// (etcd raft's `ErrSnapshotTemporarilyUnavailable`).
    case snapshotTemporarilyUnavailable
}

/// What the core reads of the persisted log (etcd raft's `Storage` interface).
///
/// The core only reads; the application writes what each `Ready` asks (snapshot, entries, hard
/// state) into its storage before calling `RaftCore.advance(_:)`. The core holds a reference,
/// so implementations are classes. Entries not yet persisted live inside the core, which never
/// asks the storage for them.
///
/// The core treats `.compacted` as "send a snapshot instead" and `.unavailable` as a bug; an
/// implementation that fails to read its own log (an I/O error) should stop the process.
public protocol LogStorage: AnyObject {
    /// The hard state last persisted.
    var hardState: HardState { get }
    /// The latest snapshot's metadata; index 0 and the initial membership when there is none.
    var snapshotMetadata: SnapshotMetadata { get }
    /// The first index still held as an entry: the snapshot's index plus one.
    var firstIndex: UInt64 { get }
    /// The last index held; the snapshot's index when no entries follow it.
    var lastIndex: UInt64 { get }
    /// The term of the entry at `index`, for `firstIndex - 1 ... lastIndex` (the snapshot's term
    /// at `firstIndex - 1`).
    func term(at index: UInt64) throws(LogStorageError) -> UInt64
    /// The entries `lowIndex ..< highIndex`, stopping once `maxBytes` would be exceeded (but
    /// always at least one entry when the range is not empty).
    func entries(from lowIndex: UInt64, upTo highIndex: UInt64, maxBytes: Int) throws(LogStorageError) -> [Entry]
    /// The latest snapshot, to send to a follower whose next entry has been compacted.
    func snapshot() throws(LogStorageError) -> Snapshot
}

extension Entry {
    /// What an entry counts for against the byte limits of messages and `Ready`: its data
    /// plus a fixed allowance for term, index and kind.
    var sizeBytes: Int { data.count + 16 }
}
