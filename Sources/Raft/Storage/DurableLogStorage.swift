import BlockingWork
import Synchronization

/// A node's durable Raft state: the write-ahead log and snapshot store under one directory, and
/// the log kept in memory for the core to read (etcd's WAL + MemoryStorage pair in one type).
///
/// Layout: `<directory>/wal/` holds the segments, `<directory>/snap/` the snapshots.
///
/// Order of durability (DESIGN.md §1, etcd's raftexample): a snapshot's file is durable before
/// the WAL records it; the WAL batch is durable before `save` returns; the in-memory log follows
/// the submission order, so reads see a batch as soon as it is submitted, and its caller learns
/// of durability from `save` returning.
public final class DurableLogStorage: LogStorage, Sendable {
    /// The write-ahead log underneath.
    public let log: WriteAheadLog
    /// The snapshot store underneath.
    public let snapshots: SnapshotStore
    /// What recovery found and repaired when the storage was opened.
    public let tornTail: WALTornTail?
    private struct Locked {
        var log: LogState
        var snapshotData: [UInt8]
        /// Snapshot markers submitted to the WAL and not yet known durable, oldest first.
        var pendingMarkers: [(ticket: WriteAheadLog.Ticket, index: UInt64)] = []
        /// The snapshot whose file `writeSnapshotFile` made durable last, which `submit` may name.
        var writtenSnapshotFile: SnapshotMetadata?
    }

    private let state: Mutex<Locked>

    /// Opens (creating if needed) the storage under `directory`, replaying the WAL and loading the
    /// snapshot it names. Throws if anything but a torn tail is damaged, or if the WAL names a
    /// snapshot the store does not hold.
    ///
    /// `bootstrap` is the membership of a brand-new group: when the storage holds nothing yet, its
    /// `BootstrapLog` (one committed membership entry per member) is written durably, as
    /// `MemoryStorage(bootstrap:)` holds it in memory; otherwise it is ignored, so a restarted
    /// node keeps the membership its log says.
    public static func open(
        directory: String, bootstrap: ConfState? = nil, walOptions: WriteAheadLog.Options = .init()
    ) throws -> DurableLogStorage {
        // The snapshots share the WAL's record of unsynced changes: one power cut takes both.
        let snapshots = try SnapshotStore(directory: directory + "/snap", unsyncedChanges: walOptions.unsyncedChanges)
        let (log, recovered) = try WriteAheadLog.open(directory: directory + "/wal", options: walOptions)
        do {
            var data: [UInt8] = []
            if recovered.snapshot.index > 0 {
                data = try snapshots.load(index: recovered.snapshot.index, term: recovered.snapshot.term).data
            }
            var state = LogState()
            state.hardState = recovered.hardState
            state.snapshot = recovered.snapshot
            state.start = recovered.snapshot.index + 1
            state.entries = recovered.entries
            if let bootstrap, state == LogState() {
                let initial = BootstrapLog(members: bootstrap)
                try log.appendBlocking(initial.entries.map(WALRecord.entry) + [.hardState(initial.hardState)])
                state.entries = initial.entries
                state.hardState = initial.hardState
            }
            return DurableLogStorage(log: log, snapshots: snapshots, state: state, snapshotData: data, tornTail: recovered.tornTail)
        } catch {
            log.close()
            throw error
        }
    }

    private init(log: WriteAheadLog, snapshots: SnapshotStore, state: LogState, snapshotData: [UInt8], tornTail: WALTornTail?) {
        self.log = log
        self.snapshots = snapshots
        self.tornTail = tornTail
        self.state = Mutex(Locked(log: state, snapshotData: snapshotData))
    }

    /// The last hard state saved.
    public var hardState: HardState { state.withLock { $0.log.hardState } }

    /// The latest snapshot's metadata; index 0 and the initial membership when there is none.
    public var snapshotMetadata: SnapshotMetadata { state.withLock { $0.log.snapshot } }

    /// The first index held in the log (one past the snapshot).
    public var firstIndex: UInt64 { state.withLock { $0.log.snapshot.index + 1 } }

    /// The last index in the log, or the snapshot's index when the log after it is empty.
    public var lastIndex: UInt64 { state.withLock { $0.log.lastIndex } }

    /// The latest snapshot (metadata and the application's data).
    public func snapshot() throws(LogStorageError) -> Snapshot {
        state.withLock { Snapshot(metadata: $0.log.snapshot, data: $0.snapshotData) }
    }

    /// The term of the entry at `index`; the snapshot's index answers with the snapshot's term.
    public func term(at index: UInt64) throws(LogStorageError) -> UInt64 {
        let (term, snapshotIndex) = state.withLock { ($0.log.term(at: index), $0.log.snapshot.index) }
        if let term { return term }
        throw index < snapshotIndex ? .compacted : .unavailable
    }

    /// The entries `lowIndex ..< highIndex`, stopping once `maxBytes` would be exceeded (but
    /// always at least one), as etcd's `Storage.Entries` does for message batching.
    public func entries(from lowIndex: UInt64, upTo highIndex: UInt64, maxBytes: Int) throws(LogStorageError) -> [Entry] {
        try state.withLock { locked throws(LogStorageError) -> [Entry] in
            let log = locked.log
            if lowIndex <= log.snapshot.index { throw .compacted }
            if highIndex > log.lastIndex + 1 { throw .unavailable }
            var result: [Entry] = []
            var bytes = 0
            for index in lowIndex..<max(lowIndex, highIndex) {
                guard let entry = log.entry(at: index) else { break }
                bytes += entry.sizeBytes
                if !result.isEmpty && bytes > maxBytes { break }
                result.append(entry)
            }
            return result
        }
    }

    /// Makes one Ready's worth of state durable with one WAL batch and (shared) fdatasync:
    /// a snapshot received from the leader (its file first), then the entries (a conflicting
    /// suffix is replaced), then the hard state. Returns once all of it is on stable storage.
    public func save(hardState: HardState? = nil, entries: [Entry] = [], snapshot: Snapshot? = nil) async throws {
        if let snapshot { try await writeSnapshotFile(snapshot) }
        try await waitUntilDurable(try submit(hardState: hardState, entries: entries, snapshot: snapshot))
    }

    /// Writes a snapshot's file and makes it durable (the file, then its directory): the first
    /// and slow half of recording a snapshot, before `submit` names it in the WAL. On a Dispatch
    /// thread (`BlockingWork`), so that it holds neither the caller's actor nor a thread of Swift's pool:
    /// a Raft node installing a leader's snapshot keeps stepping messages and answering
    /// meanwhile, however long the disk takes.
    public func writeSnapshotFile(_ snapshot: Snapshot) async throws {
        try await BlockingWork.run { [snapshots] in try snapshots.save(snapshot) }
        state.withLock { $0.writtenSnapshotFile = snapshot.metadata }
    }

    /// Returns once the batch behind `ticket` is on stable storage; then deletes the snapshot
    /// files that a snapshot marker made durable by it has superseded.
    public func waitUntilDurable(_ ticket: WriteAheadLog.Ticket) async throws {
        try await log.waitUntilDurable(ticket)
        let durableMarker = state.withLock { locked -> UInt64? in
            var latest: UInt64?
            while let first = locked.pendingMarkers.first, first.ticket <= ticket {
                latest = first.index
                locked.pendingMarkers.removeFirst()
            }
            return latest
        }
        if let durableMarker {
            // Unlinks and a directory fsync: off the caller's thread, as `writeSnapshotFile`.
            try await BlockingWork.run { [snapshots] in try snapshots.prune(olderThan: durableMarker) }
        }
    }

    /// `save` without the wait: the in-memory log reflects the batch at once; pass the ticket to
    /// `waitUntilDurable` before acting on its durability (before sending messages that depend
    /// on it). A snapshot's file must have been written by `writeSnapshotFile` first: it must be
    /// durable before the WAL says it exists (a marker without its file refuses to start; a file
    /// without its marker is merely unused), and its fsync does not belong here, where the
    /// caller holds its actor. `mustSync` false lets the batch wait for a later sync
    /// (`WriteAheadLog.submit`); a batch with entries or a snapshot is always synced.
    public func submit(
        hardState: HardState? = nil, entries: [Entry] = [], snapshot: Snapshot? = nil, mustSync: Bool = true
    ) throws -> WriteAheadLog.Ticket {
        if let snapshot, state.withLock({ $0.writtenSnapshotFile }) != snapshot.metadata {
            throw StorageError.invalidArgument(
                "snapshot at index \(snapshot.metadata.index) term \(snapshot.metadata.term) submitted before writeSnapshotFile wrote it")
        }
        var records: [WALRecord] = []
        records.reserveCapacity(entries.count + 2)
        if let snapshot { records.append(.snapshot(snapshot.metadata)) }
        records.append(contentsOf: entries.lazy.map(WALRecord.entry))
        if let hardState { records.append(.hardState(hardState)) }
        guard !records.isEmpty else { return try log.submit([]) }
        return try state.withLock { locked throws -> WriteAheadLog.Ticket in
            // Check against the log as submitted so far, then submit under the same lock, so that
            // memory and the WAL see batches in one order. The log is changed in place only once
            // the WAL took the batch: a trial append on a copy copied every entry held, per batch.
            let gap: (index: UInt64, expected: UInt64)?
            if let snapshot {
                // Rare (a follower catching up): the snapshot changes what may follow it.
                var withSnapshot = locked.log
                withSnapshot.apply(snapshot: snapshot.metadata)
                gap = withSnapshot.gap(appending: entries)
            } else {
                gap = locked.log.gap(appending: entries)
            }
            if let gap {
                throw StorageError.invalidArgument("entry \(gap.index) would leave a gap after \(gap.expected - 1) in the log")
            }
            let ticket = try log.submit(records, mustSync: mustSync || !entries.isEmpty || snapshot != nil)
            // The log ignores a snapshot older than its own; so must the data served with it.
            let isNewest = snapshot.map { $0.metadata.index > locked.log.snapshot.index } ?? false
            if let snapshot { locked.log.apply(snapshot: snapshot.metadata) }
            for entry in entries { _ = locked.log.append(entry) }
            if let hardState { locked.log.hardState = hardState }
            if let snapshot {
                if isNewest { locked.snapshotData = snapshot.data }
                locked.pendingMarkers.append((ticket, snapshot.metadata.index))
            }
            return ticket
        }
    }

    /// Records an application snapshot at an applied index and compacts the log up to it:
    /// the snapshot file, then a WAL marker, after which segments wholly before it are released.
    public func compact(to snapshot: Snapshot) async throws {
        let current = state.withLock { $0.log }
        guard snapshot.metadata.index > current.snapshot.index else { return }
        guard let term = current.term(at: snapshot.metadata.index), term == snapshot.metadata.term else {
            throw StorageError.invalidArgument(
                "snapshot at index \(snapshot.metadata.index) term \(snapshot.metadata.term) does not match the log")
        }
        try await save(snapshot: snapshot)
    }

    /// Whether the batch behind `ticket` is on stable storage already (`waitUntilDurable`
    /// without the wait, and without pruning snapshot files); throws if the WAL failed first.
    public func isDurable(_ ticket: WriteAheadLog.Ticket) throws -> Bool { try log.isDurable(ticket) }

    /// Stops the WAL writer after writing what is queued.
    public func close() { log.close() }
}
