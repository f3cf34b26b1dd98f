import Foundation
import Synchronization
import Testing
@testable import Raft

/// Entries with recognisable contents.
func testEntries(_ range: ClosedRange<UInt64>, term: UInt64 = 1, bytes: Int = 40) -> [Entry] {
    range.map { index in
        Entry(term: term, index: index, data: (0..<bytes).map { UInt8(truncatingIfNeeded: Int(index) &* 31 &+ $0 &+ Int(term)) })
    }
}

@Suite("Write-ahead log")
struct WriteAheadLogTests {
    @Test func entriesAndHardStateSurviveReopen() async throws {
        let directory = try TemporaryDirectory()
        do {
            let (log, recovered) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20))
            #expect(recovered.entries.isEmpty)
            #expect(recovered.hardState == HardState())
            try await log.append(testEntries(1...5).map(WALRecord.entry) + [.hardState(HardState(term: 1, vote: 2, commit: 3))])
            try await log.append(testEntries(6...9).map(WALRecord.entry))
            try await log.append([.hardState(HardState(term: 2, vote: 0, commit: 9))])
            log.close()
        }
        let (log, recovered) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20))
        defer { log.close() }
        #expect(recovered.entries == testEntries(1...9))
        #expect(recovered.hardState == HardState(term: 2, vote: 0, commit: 9))
        #expect(recovered.tornTail == nil)
    }

    @Test func conflictingEntriesReplaceTheSuffixOnReplay() async throws {
        let directory = try TemporaryDirectory()
        do {
            let (log, _) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20))
            try await log.append(testEntries(1...10, term: 1).map(WALRecord.entry))
            // A new leader of term 2 overwrites from index 6 (Raft paper §5.3).
            try await log.append(testEntries(6...7, term: 2).map(WALRecord.entry))
            log.close()
        }
        let (log, recovered) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20))
        defer { log.close() }
        #expect(recovered.entries == testEntries(1...5, term: 1) + testEntries(6...7, term: 2))
    }

    @Test func rolloverSpreadsTheLogOverSegmentsThatReplayInOrder() async throws {
        let directory = try TemporaryDirectory()
        do {
            let (log, _) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 4096))
            for start in stride(from: UInt64(1), through: 491, by: 10) {
                try await log.append(testEntries(start...(start + 9)).map(WALRecord.entry)
                    + [.hardState(HardState(term: 1, vote: 1, commit: start))])
            }
            #expect(log.statistics.segmentsCreated > 5)
            log.close()
        }
        let segments = try FileBytes.names(in: directory.path).filter { $0.hasSuffix(".wal") }
        #expect(segments.count > 5)
        // Every segment but the last is cut to its exact length at rollover.
        let sizes = try segments.map { try FileBytes.read(directory.appending($0)).count }
        #expect(sizes.dropLast().allSatisfy { $0 <= 4096 })
        #expect(sizes.last == 4096)
        let (log, recovered) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 4096))
        defer { log.close() }
        #expect(recovered.entries == testEntries(1...500))
        #expect(recovered.hardState.commit == 491)
    }

    @Test func snapshotMarkerReleasesSegmentsWhollyBeforeIt() async throws {
        let directory = try TemporaryDirectory()
        let options = WriteAheadLog.Options(segmentBytes: 4096)
        do {
            let (log, _) = try WriteAheadLog.open(directory: directory.path, options: options)
            for start in stride(from: UInt64(1), through: 291, by: 10) {
                try await log.append(testEntries(start...(start + 9)).map(WALRecord.entry))
            }
            let before = log.statistics.segmentCount
            try await log.append([.snapshot(SnapshotMetadata(index: 250, term: 1)), .hardState(HardState(term: 1, vote: 1, commit: 300))])
            let after = log.statistics
            #expect(after.segmentsReleased > 0)
            #expect(after.segmentCount == before - after.segmentsReleased)
            // Write on, so that the oldest kept segment starts past its header's older marker.
            for start in stride(from: UInt64(301), through: 391, by: 10) {
                try await log.append(testEntries(start...(start + 9)).map(WALRecord.entry))
            }
            log.close()
        }
        let (log, recovered) = try WriteAheadLog.open(directory: directory.path, options: options)
        defer { log.close() }
        #expect(recovered.snapshot == SnapshotMetadata(index: 250, term: 1))
        #expect(recovered.entries == testEntries(251...400))
        #expect(recovered.hardState.commit == 300)
        // Nothing released held an entry after the snapshot.
        #expect(try FileBytes.names(in: directory.path).contains(WALSegmentName.fileName(sequence: 1)) == false)
    }

    /// Group commit shares syncs between concurrent appenders, and never at the cost of an
    /// acknowledgement: the moment an append is acknowledged, its entry must already survive a
    /// power cut (every write to the segment since its last fdatasync lost). A log that
    /// acknowledged before syncing, or never synced, fails here, whatever its counts say.
    @Test func concurrentAppendersShareFdatasyncs() async throws {
        let directory = try TemporaryDirectory()
        let changes = UnsyncedChanges()
        let options = WriteAheadLog.Options(segmentBytes: 1 << 20, unsyncedChanges: changes)
        let (log, _) = try WriteAheadLog.open(directory: directory.path, options: options)
        let sequencer = TestSequencer(log: log)
        let durable = DurableEntries(changes: changes, segment: directory.appending(WALSegmentName.fileName(sequence: 1)))
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<64 {
                group.addTask {
                    for _ in 0..<20 {
                        let (index, ticket) = try await sequencer.submitNext()
                        try await log.waitUntilDurable(ticket)
                        #expect(try durable.contains(index), "entry \(index) was acknowledged before it was synced")
                    }
                }
            }
            try await group.waitForAll()
        }
        let statistics = log.statistics
        log.close()
        #expect(statistics.batchesWritten == 64 * 20)
        // Group commit: fewer syncs than batches (one sync per batch would be 1,280). How many
        // share one depends on how the 64 tasks interleave: under a loaded CI run 697 syncs
        // (a bound of half the batches failed it), on a quiet machine far fewer.
        #expect(statistics.syncs < statistics.batchesWritten * 3 / 4, "\(statistics)")
        #expect(changes.pendingCount == 0, "closing left writes unsynced")
        let (reopened, recovered) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20))
        reopened.close()
        #expect(recovered.entries.count == 64 * 20)
        #expect(recovered.entries.map(\.index) == Array(1...1280))
    }

    @Test func appendingAfterReopenContinuesTheLog() async throws {
        let directory = try TemporaryDirectory()
        for round in 0..<3 {
            let (log, recovered) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20))
            #expect(recovered.entries == (round == 0 ? [] : testEntries(1...UInt64(round * 5))))
            let first = UInt64(round * 5 + 1)
            try await log.append(testEntries(first...(first + 4)).map(WALRecord.entry))
            log.close()
        }
    }

    @Test func secondOpenOfTheSameDirectoryIsRefused() throws {
        let directory = try TemporaryDirectory()
        let (log, _) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20))
        #expect(throws: StorageError.locked(path: directory.appending("LOCK"))) {
            _ = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20))
        }
        log.close()
        let (again, _) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20))
        again.close()
    }

    @Test func closedLogRefusesSubmissions() async throws {
        let directory = try TemporaryDirectory()
        let (log, _) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20))
        log.close()
        #expect(throws: StorageError.closed) { _ = try log.submit([.hardState(HardState(term: 1))]) }
    }

    @Test func systemCallErrorsNameTheCallThePathAndErrno() throws {
        let directory = try TemporaryDirectory()
        try FileBytes.write([1, 2, 3], to: directory.appending("plain-file"))
        let walPath = directory.appending("plain-file/wal")
        let error = #expect(throws: StorageError.self) { _ = try WriteAheadLog.open(directory: walPath) }
        guard case .systemCall(let failure) = error else {
            Issue.record("expected a system call error, got \(String(describing: error))")
            return
        }
        #expect(failure.call == "mkdir")
        #expect(failure.path == walPath)
        #expect(failure.errno == ENOTDIR)
        #expect(failure.description == "mkdir \"\(walPath)\": Not a directory (errno \(ENOTDIR))")
    }
}

/// Assigns indexes and submits atomically, as a driver does.
actor TestSequencer {
    let log: WriteAheadLog
    var nextIndex: UInt64 = 1

    init(log: WriteAheadLog) { self.log = log }

    func submitNext() throws -> (index: UInt64, ticket: WriteAheadLog.Ticket) {
        defer { nextIndex += 1 }
        return (nextIndex, try log.submit([.entry(Entry(term: 1, index: nextIndex, data: [UInt8](repeating: 7, count: 256)))]))
    }
}

/// The entries of one segment that would survive a power cut, read from `UnsyncedChanges`'
/// view of it. A view proves every entry in it durable, so most checks are answered from what
/// an earlier view already proved.
final class DurableEntries: Sendable {
    let changes: UnsyncedChanges
    let segment: String
    private let proven = Mutex<Set<UInt64>>([])

    init(changes: UnsyncedChanges, segment: String) {
        self.changes = changes
        self.segment = segment
    }

    func contains(_ index: UInt64) throws -> Bool {
        if proven.withLock({ $0.contains(index) }) { return true }
        let bytes = try changes.contentsAfterPowerCut(of: segment)
        let scanned = try WALSegmentScanner.scan(bytes: bytes, path: segment, sequence: 1, isLast: true)
        var indexes: Set<UInt64> = []
        for (_, record) in scanned.records {
            if case .entry(let entry) = record { indexes.insert(entry.index) }
        }
        proven.withLock { $0.formUnion(indexes) }
        return indexes.contains(index)
    }
}
