#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// A segmented, checksummed write-ahead log with group commit (DESIGN.md §1).
///
/// Callers `submit` framed records, which returns at once with a ticket, and then wait for the
/// ticket to become durable. One writer thread takes everything submitted since its last sync,
/// writes it with one `pwrite` and makes it durable with one `fdatasync`; callers that submit
/// while a sync is in flight share the next one. So a driver can hand a whole Ready over as one
/// batch, and many concurrent proposals share a sync, without either knowing of the other.
///
/// Batches are written in submission order, which is why `submit` is synchronous: a caller that
/// assigns log indexes can submit inside the same critical section and the WAL keeps that order.
public final class WriteAheadLog: Sendable {
    /// How the log is laid out on disk.
    public struct Options: Sendable {
        /// Size at which a segment is closed and the next begins; each segment is zero-filled to
        /// this size ahead of use (see `PosixFile.writeZeros`). etcd uses 64 MiB.
        public var segmentBytes: Int

        /// The longest the writer holds a group back for submitters it expects (a commit delay,
        /// as PostgreSQL's `commit_delay`); never more than half the last sync took, and only
        /// while more callers are at work than have submitted. Zero turns it off.
        public var commitDelayLimit: Duration

        /// Where every change to the log's files is recorded until synced, for tests that cut
        /// the power (`UnsyncedChanges`); nil in real use.
        public var unsyncedChanges: UnsyncedChanges?

        /// The longest a batch submitted with `mustSync` false waits for company before it is
        /// written anyway (`submit`).
        public var deferLimit: Duration

        /// Options with `segmentBytes` (64 MiB by default), a 200 µs commit delay limit and a
        /// 1 s defer limit.
        public init(
            segmentBytes: Int = 64 << 20, commitDelayLimit: Duration = .microseconds(200),
            unsyncedChanges: UnsyncedChanges? = nil, deferLimit: Duration = .seconds(1)
        ) {
            self.segmentBytes = segmentBytes
            self.commitDelayLimit = commitDelayLimit
            self.unsyncedChanges = unsyncedChanges
            self.deferLimit = deferLimit
        }
    }

    /// What replay found on disk.
    public struct Recovered: Sendable {
        /// The last hard state recorded.
        public var hardState: HardState
        /// The latest snapshot recorded as durable; index 0 when none.
        public var snapshot: SnapshotMetadata
        /// The entries after the snapshot, contiguous, conflicting suffixes already resolved.
        public var entries: [Entry]
        /// Set when recovery cut off a torn last record.
        public var tornTail: WALTornTail?
    }

    /// Identifies a submitted batch; tickets become durable in the order they were issued.
    public struct Ticket: Sendable, Hashable, Comparable {
        fileprivate let sequence: UInt64
        /// Earlier tickets order first, and become durable first.
        public static func < (lhs: Ticket, rhs: Ticket) -> Bool { lhs.sequence < rhs.sequence }
    }

    /// Counters for tests and benchmarks.
    public struct Statistics: Sendable, Hashable {
        /// fdatasync calls made on segments (group commits, plus one per rollover).
        public var syncs = 0
        /// Batches submitted and written.
        public var batchesWritten = 0
        /// Records written.
        public var recordsWritten = 0
        /// Segments created since open (not counting the first when the log is new).
        public var segmentsCreated = 0
        /// Segments deleted because a snapshot covered them.
        public var segmentsReleased = 0
        /// Segment files on disk.
        public var segmentCount = 0
    }

    private struct Waiter {
        var ticket: UInt64
        var wake: Wake

        enum Wake {
            case task(CheckedContinuation<Void, any Error>)
            /// A thread blocked in `appendBlocking`.
            case thread(ConditionLock<Result<Void, StorageError>?>)
        }

        func resume(_ outcome: Result<Void, StorageError>) {
            switch wake {
            case .task(let continuation):
                continuation.resume(with: outcome)
            case .thread(let slot):
                slot.withLock { $0 = outcome }
                slot.signal()
            }
        }
    }

    private struct Shared {
        var pending: [WALBatch] = []
        var nextTicket: UInt64 = 1
        var durableTicket: UInt64 = 0
        var waiters: [Waiter] = []
        var failure: StorageError?
        var closing = false
        var statistics = Statistics()
    }

    /// The directory holding the segments.
    public let directory: String
    private let shared: ConditionLock<Shared>
    private let thread: Mutex<OSThread?>
    private let lockFile: LockFile

    /// Opens (creating if needed) the log in `directory`, replays it and starts the writer.
    /// Throws `StorageError.corruptRecord` naming the file and byte offset if any record other
    /// than a torn last one is damaged, and `.locked` if another process has the directory open.
    public static func open(directory: String, options: Options = Options()) throws -> (log: WriteAheadLog, recovered: Recovered) {
        try FileSystem.makeDirectories(directory)
        let lockFile = try LockFile(path: directory + "/LOCK")
        let outcome = try WALRecovery.recover(
            directory: directory, segmentBytes: options.segmentBytes, changes: options.unsyncedChanges)
        let log = try WriteAheadLog(
            directory: directory, writer: outcome.writer, lockFile: lockFile, commitDelayLimit: options.commitDelayLimit,
            deferLimit: options.deferLimit)
        let recovered = Recovered(
            hardState: outcome.state.hardState, snapshot: outcome.state.snapshot,
            entries: outcome.state.entries, tornTail: outcome.tornTail)
        return (log, recovered)
    }

    private init(directory: String, writer: WALWriter, lockFile: LockFile, commitDelayLimit: Duration, deferLimit: Duration) throws {
        self.directory = directory
        self.lockFile = lockFile
        var initial = Shared()
        initial.statistics.segmentCount = writer.segments.count
        let shared = ConditionLock(initial)
        self.shared = shared
        let owned = WriterOwnership(writer)
        thread = Mutex(try OSThread { WriteAheadLog.runWriter(owned.writer, shared, commitDelayLimit: commitDelayLimit, deferLimit: deferLimit) })
    }

    deinit {
        shared.withLock { $0.closing = true }
        shared.signal()
    }

    /// Frames `records` and queues them as one batch, written contiguously and made durable by
    /// one sync (shared with whatever else is queued). Returns without waiting for the disk.
    ///
    /// With `mustSync` false the batch may wait in the queue until a batch that must be durable
    /// comes, a caller waits for it, the log closes, or `Options.deferLimit` has passed: for records
    /// whose loss is harmless (a hard state whose commit index alone moved, which a Raft node
    /// learns again from its leader). Writing it at once cost a write and an fdatasync of its
    /// own, and the next batch that mattered waited behind that sync.
    public func submit(_ records: [WALRecord], mustSync: Bool = true) throws -> Ticket {
        var batch = WALBatch(ticket: 0, bytes: [], maxEntryIndex: nil, lastHardState: nil, lastSnapshot: nil, recordCount: records.count)
        batch.mustSync = mustSync
        var capacity = 0
        for record in records {
            guard case .entry(let entry) = record else {
                capacity += 96
                continue
            }
            // Recovery reads a longer length as a damaged one; refuse such an entry up front.
            guard 18 + entry.data.count <= WALFrame.maxPayloadBytes else {
                throw StorageError.invalidArgument(
                    "entry \(entry.index) holds \(entry.data.count) bytes; the WAL takes at most \(WALFrame.maxPayloadBytes - 18)")
            }
            capacity += WALFrame.framedSize(payloadBytes: 18 + entry.data.count)
        }
        batch.bytes.reserveCapacity(capacity)
        for record in records {
            WALFrame.append(record, to: &batch.bytes)
            switch record {
            case .entry(let entry): batch.maxEntryIndex = max(batch.maxEntryIndex ?? 0, entry.index)
            case .hardState(let state): batch.lastHardState = state
            case .snapshot(let metadata): batch.lastSnapshot = metadata
            }
        }
        let ticket = try shared.withLock { state throws(StorageError) -> UInt64 in
            if let failure = state.failure { throw StorageError.failed(underlying: failure.description) }
            if state.closing { throw StorageError.closed }
            batch.ticket = state.nextTicket
            state.nextTicket += 1
            state.pending.append(batch)
            return batch.ticket
        }
        if mustSync { shared.signal() }
        return Ticket(sequence: ticket)
    }

    /// Returns once the batch behind `ticket` (and every earlier one) is on stable storage.
    /// Throws the write or sync error if that failed first.
    public func waitUntilDurable(_ ticket: Ticket) async throws {
        if try isDurable(ticket) { return }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let (outcome, kick): (Result<Void, StorageError>?, Bool) = shared.withLock { state in
                if state.durableTicket >= ticket.sequence { return (.success(()), false) }
                if let failure = state.failure { return (.failure(failure), false) }
                if state.closing && state.pending.isEmpty { return (.failure(.closed), false) }
                state.waiters.append(Waiter(ticket: ticket.sequence, wake: .task(continuation)))
                return (nil, Self.waitsForDeferred(state))
            }
            if let outcome { continuation.resume(with: outcome) }
            if kick { shared.signal() }
        }
    }

    /// Submits `records` as one batch and waits until it is durable.
    public func append(_ records: [WALRecord]) async throws {
        try await waitUntilDurable(try submit(records))
    }

    /// Submits `records` and blocks the calling thread until they are durable. For setup code
    /// that blocks on I/O anyway (opening storage); on a hot path use `append`, which suspends.
    public func appendBlocking(_ records: [WALRecord]) throws {
        let ticket = try submit(records)
        let slot = ConditionLock<Result<Void, StorageError>?>(nil)
        let (settled, kick): (Result<Void, StorageError>?, Bool) = shared.withLock { state in
            if state.durableTicket >= ticket.sequence { return (.success(()), false) }
            if let failure = state.failure { return (.failure(failure), false) }
            state.waiters.append(Waiter(ticket: ticket.sequence, wake: .thread(slot)))
            return (nil, Self.waitsForDeferred(state))
        }
        if kick { shared.signal() }
        let outcome = settled ?? slot.withLock(whenReady: { $0 != nil }) { $0 ?? .failure(.closed) }
        try outcome.get()
    }

    /// Counters so far.
    public var statistics: Statistics { shared.withLock { $0.statistics } }

    /// Whether the batch behind `ticket` is on stable storage already: one lock, no wait.
    /// Throws the write or sync error if that failed before it was.
    public func isDurable(_ ticket: Ticket) throws -> Bool {
        try shared.withLock { state throws(StorageError) -> Bool in
            if state.durableTicket >= ticket.sequence { return true }
            if let failure = state.failure { throw failure }
            return false
        }
    }

    /// Writes whatever is queued, then stops the writer and closes the files. Later submissions
    /// throw `StorageError.closed`.
    public func close() {
        shared.withLock { $0.closing = true }
        shared.signal()
        let thread = self.thread.withLock { handle -> OSThread? in
            defer { handle = nil }
            return handle
        }
        thread?.join()
        lockFile.release()
    }

    /// Whether a caller that just began to wait may be waiting for a deferred batch, which the
    /// writer then has to be told of: with a batch that must be synced queued, the writer is
    /// on its way already, and a signal would only wake it early from its commit delay.
    private static func waitsForDeferred(_ state: Shared) -> Bool {
        !state.pending.isEmpty && !state.pending.contains(where: \.mustSync)
    }

    /// Whether the writer has to write now: a batch must be durable, somebody waits for one, or
    /// the log is closing or failed.
    private static func mustWrite(_ state: Shared) -> Bool {
        state.pending.contains(where: \.mustSync) || (!state.pending.isEmpty && !state.waiters.isEmpty) || state.closing
            || state.failure != nil
    }

    /// The writer thread: take everything queued, write and sync it as one group, wake the
    /// waiters it covers, repeat.
    private static func runWriter(
        _ writer: WALWriter, _ shared: ConditionLock<Shared>, commitDelayLimit: Duration, deferLimit: Duration
    ) {
        let clock = ContinuousClock()
        // Callers at work in the last round: those just woken plus those still waiting. With
        // closed-loop callers and syncs far slower than a resubmission, a group taken at once
        // holds only the callers that submitted during the previous sync, so the callers split
        // into two alternating cohorts and each sync carries half of them. Holding the group
        // back until the woken cohort has resubmitted merges them (measured: about 33 entries
        // per sync with 64 proposers without the delay).
        var expectedBatches = 0
        var lastSyncDuration = Duration.zero
        while true {
            // Deferred batches alone do not start a write (see `submit`), until `deferLimit`.
            shared.withLock(whenReady: { Self.mustWrite($0) }, timeout: deferLimit) { _ in }
            let delay = min(commitDelayLimit, lastSyncDuration / 2)
            if expectedBatches > 1 && delay > .zero {
                shared.withLock(whenReady: { $0.pending.count >= expectedBatches || $0.closing || $0.failure != nil },
                                timeout: delay) { _ in }
            }
            let (group, closing) = shared.withLock { state in
                defer { state.pending.removeAll(keepingCapacity: true) }
                return (state.pending, state.closing || state.failure != nil)
            }
            if group.isEmpty {
                if closing { break }
                continue
            }
            var failure: StorageError?
            let syncStarted = clock.now
            do {
                try writer.write(group)
                lastSyncDuration = clock.now - syncStarted
            } catch let error as StorageError {
                failure = error
            } catch {
                failure = .failed(underlying: "\(error)")
            }
            let woken = shared.withLock { state -> [Waiter] in
                if let failure {
                    // Nothing in this group can be called durable; nor can anything after it.
                    state.failure = failure
                    state.pending.removeAll()
                    defer { state.waiters.removeAll() }
                    return state.waiters
                }
                if let last = group.last { state.durableTicket = last.ticket }
                state.statistics.syncs = writer.syncCount
                state.statistics.batchesWritten += group.count
                state.statistics.recordsWritten += group.reduce(0) { $0 + $1.recordCount }
                state.statistics.segmentsCreated = writer.segmentsCreated
                state.statistics.segmentsReleased = writer.segmentsReleased
                state.statistics.segmentCount = writer.segments.count
                var woken: [Waiter] = []
                state.waiters.removeAll { waiter in
                    guard waiter.ticket <= state.durableTicket else { return false }
                    woken.append(waiter)
                    return true
                }
                expectedBatches = woken.count + state.waiters.count
                return woken
            }
            for waiter in woken {
                if let failure { waiter.resume(.failure(failure)) } else { waiter.resume(.success(())) }
            }
            if failure != nil { break }
        }
        writer.shutdown()
        let stranded = shared.withLock { state -> [Waiter] in
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in stranded { waiter.resume(.failure(.closed)) }
    }
}

/// Hands the writer state to the writer thread, which is its only user from then on.
private final class WriterOwnership: @unchecked Sendable {
    // @unchecked: after `init` only the writer thread touches `writer`.
    let writer: WALWriter
    init(_ writer: WALWriter) { self.writer = writer }
}

/// An open, exclusively locked file that keeps a second process, or a second open in this one,
/// off the same directory.
///
/// The lock is a POSIX record lock (fcntl F_SETLK), which belongs to the process: children that
/// agentd spawns do not inherit it, unlike a flock on a descriptor they share from clone until
/// their exec (a child that never execs, like an exec check's intermediate process, would hold
/// a flock for as long as it lives). The kernel drops it when the process dies, however it dies,
/// so a crash never leaves a stale lock behind. Record locks do not exclude the same process,
/// so paths this process holds are also kept in a set.
final class LockFile: Sendable {
    private let descriptor: Mutex<Int32>
    private let path: String
    private static let heldPaths = Mutex<Set<String>>([])

    init(path: String) throws {
        guard Self.heldPaths.withLock({ $0.insert(path).inserted }) else { throw StorageError.locked(path: path) }
        let file = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard file >= 0 else {
            Self.heldPaths.withLock { _ = $0.remove(path) }
            throw PosixFile.error("open", path)
        }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        while fcntl(file, F_SETLK, &lock) != 0 {
            let code = Glibc.errno
            if code == EINTR { continue }
            Glibc.close(file)
            Self.heldPaths.withLock { _ = $0.remove(path) }
            if code == EACCES || code == EAGAIN { throw StorageError.locked(path: path) }
            throw StorageError.systemCall(SystemCallError(call: "fcntl(F_SETLK)", path: path, errno: code))
        }
        self.path = path
        descriptor = Mutex(file)
    }

    /// Closes the file, which drops the lock.
    func release() {
        let released = descriptor.withLock { file -> Bool in
            guard file >= 0 else { return false }
            Glibc.close(file)
            file = -1
            return true
        }
        if released { Self.heldPaths.withLock { _ = $0.remove(path) } }
    }

    deinit { release() }
}
