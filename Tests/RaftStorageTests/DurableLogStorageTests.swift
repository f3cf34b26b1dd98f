import Foundation
import Testing
@testable import Raft

@Suite("Durable log storage")
struct DurableLogStorageTests {
    private let smallSegments = WriteAheadLog.Options(segmentBytes: 4096)

    @Test func savedStateIsReadableAndSurvivesReopen() async throws {
        let directory = try TemporaryDirectory()
        do {
            let storage = try DurableLogStorage.open(directory: directory.path, walOptions: smallSegments)
            try await storage.save(hardState: HardState(term: 1, vote: 1, commit: 0), entries: testEntries(1...30))
            try await storage.save(hardState: HardState(term: 1, vote: 1, commit: 25))
            #expect(storage.lastIndex == 30)
            #expect(try storage.entries(from: 3, upTo: 6, maxBytes: .max) == Array(testEntries(1...30)[2..<5]))
            storage.close()
        }
        let storage = try DurableLogStorage.open(directory: directory.path, walOptions: smallSegments)
        defer { storage.close() }
        #expect(storage.hardState == HardState(term: 1, vote: 1, commit: 25))
        #expect(storage.firstIndex == 1)
        #expect(storage.lastIndex == 30)
        #expect(try storage.term(at: 30) == 1)
        #expect(try storage.entries(from: 1, upTo: 31, maxBytes: .max) == testEntries(1...30))
    }

    @Test func readsOutsideTheLogAreTypedErrors() async throws {
        let directory = try TemporaryDirectory()
        let storage = try DurableLogStorage.open(directory: directory.path, walOptions: .init(segmentBytes: 1 << 20))
        defer { storage.close() }
        try await storage.save(entries: testEntries(1...10))
        try await storage.compact(to: Snapshot(metadata: SnapshotMetadata(index: 4, term: 1), data: [1]))
        #expect(throws: LogStorageError.compacted) { _ = try storage.entries(from: 4, upTo: 6, maxBytes: .max) }
        #expect(throws: LogStorageError.unavailable) { _ = try storage.entries(from: 9, upTo: 12, maxBytes: .max) }
        #expect(throws: LogStorageError.unavailable) { _ = try storage.term(at: 11) }
        #expect(try storage.term(at: 4) == 1)
        // 40 bytes of data plus 16 of fields per entry (Entry.sizeBytes).
        #expect(try storage.entries(from: 5, upTo: 11, maxBytes: 112).count == 2)
        #expect(try storage.entries(from: 5, upTo: 11, maxBytes: 1).count == 1)
    }

    @Test func gapIsRefusedBeforeAnythingIsWritten() async throws {
        let directory = try TemporaryDirectory()
        let storage = try DurableLogStorage.open(directory: directory.path, walOptions: .init(segmentBytes: 1 << 20))
        defer { storage.close() }
        try await storage.save(entries: testEntries(1...3))
        await #expect(throws: StorageError.invalidArgument("entry 5 would leave a gap after 3 in the log")) {
            try await storage.save(entries: testEntries(5...6))
        }
        #expect(storage.lastIndex == 3)
    }

    @Test func compactionSnapshotIsLoadedOnReopenAndOldSegmentsAreGone() async throws {
        let directory = try TemporaryDirectory()
        let snapshot = Snapshot(
            metadata: SnapshotMetadata(index: 150, term: 1, confState: ConfState(voters: [1, 2, 3])),
            data: Array("state at 150".utf8))
        do {
            let storage = try DurableLogStorage.open(directory: directory.path, walOptions: smallSegments)
            for start in stride(from: UInt64(1), through: 191, by: 10) {
                try await storage.save(entries: testEntries(start...(start + 9)))
            }
            try await storage.compact(to: snapshot)
            #expect(storage.log.statistics.segmentsReleased > 0)
            #expect(storage.firstIndex == 151)
            try await storage.save(hardState: HardState(term: 1, vote: 1, commit: 200), entries: testEntries(201...210))
            storage.close()
        }
        let storage = try DurableLogStorage.open(directory: directory.path, walOptions: smallSegments)
        defer { storage.close() }
        #expect(try storage.snapshot() == snapshot)
        #expect(storage.firstIndex == 151)
        #expect(try storage.entries(from: 151, upTo: 211, maxBytes: .max) == testEntries(151...210))
        #expect(storage.hardState.commit == 200)
    }

    @Test func snapshotFilesArePrunedOnlyOnceTheWALNamesANewerOne() async throws {
        let directory = try TemporaryDirectory()
        func snapshot(_ index: UInt64) -> Snapshot {
            Snapshot(metadata: SnapshotMetadata(index: index, term: 1), data: Array("at \(index)".utf8))
        }
        do {
            let storage = try DurableLogStorage.open(directory: directory.path, walOptions: smallSegments)
            try await storage.save(entries: testEntries(1...100))
            for index in [20, 40, 60] as [UInt64] { try await storage.compact(to: snapshot(index)) }
            #expect(try storage.snapshots.list().map(\.index) == [40, 60])
            // A crash between writing a snapshot file and recording it in the WAL leaves an
            // orphan newer than what the WAL names; the named one must survive it.
            try storage.snapshots.save(snapshot(80))
            storage.close()
        }
        let storage = try DurableLogStorage.open(directory: directory.path, walOptions: smallSegments)
        defer { storage.close() }
        #expect(try storage.snapshot() == snapshot(60))
        #expect(try storage.snapshots.list().map(\.index) == [40, 60, 80])
        try await storage.compact(to: snapshot(90))
        #expect(try storage.snapshots.list().map(\.index) == [80, 90])
    }

    @Test func leaderSnapshotThatConflictsReplacesTheLog() async throws {
        let directory = try TemporaryDirectory()
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 8, term: 3), data: [42])
        do {
            let storage = try DurableLogStorage.open(directory: directory.path, walOptions: .init(segmentBytes: 1 << 20))
            try await storage.save(entries: testEntries(1...10, term: 1))
            try await storage.save(hardState: HardState(term: 3, vote: 2, commit: 8), entries: testEntries(9...9, term: 3), snapshot: snapshot)
            #expect(storage.firstIndex == 9)
            #expect(storage.lastIndex == 9)
            storage.close()
        }
        let storage = try DurableLogStorage.open(directory: directory.path, walOptions: .init(segmentBytes: 1 << 20))
        defer { storage.close() }
        #expect(try storage.snapshot() == snapshot)
        #expect(try storage.entries(from: 9, upTo: 10, maxBytes: .max) == testEntries(9...9, term: 3))
        #expect(storage.hardState == HardState(term: 3, vote: 2, commit: 8))
    }

    /// The WAL may name a snapshot only once its file is durable: `submit` refuses one that
    /// `writeSnapshotFile` has not written, and writes nothing.
    @Test func aSnapshotSubmittedBeforeItsFileIsRefused() async throws {
        let directory = try TemporaryDirectory()
        let storage = try DurableLogStorage.open(directory: directory.path, walOptions: .init(segmentBytes: 1 << 20))
        defer { storage.close() }
        try await storage.save(entries: testEntries(1...10, term: 1))
        let snapshot = Snapshot(metadata: SnapshotMetadata(index: 8, term: 3), data: [42])
        #expect(throws: StorageError.self) { _ = try storage.submit(entries: testEntries(9...9, term: 3), snapshot: snapshot) }
        #expect(storage.lastIndex == 10)
        try await storage.writeSnapshotFile(snapshot)
        try await storage.waitUntilDurable(try storage.submit(entries: testEntries(9...9, term: 3), snapshot: snapshot))
        #expect(storage.firstIndex == 9)
    }

    /// A snapshot older than the one the log holds changes nothing: the data served stays the
    /// newer snapshot's, which the metadata names.
    @Test func anOlderSnapshotSubmittedLateLeavesTheNewerOnesData() async throws {
        let directory = try TemporaryDirectory()
        let storage = try DurableLogStorage.open(directory: directory.path, walOptions: .init(segmentBytes: 1 << 20))
        defer { storage.close() }
        try await storage.save(entries: testEntries(1...10, term: 1))
        let newer = Snapshot(metadata: SnapshotMetadata(index: 8, term: 1), data: [8])
        let older = Snapshot(metadata: SnapshotMetadata(index: 5, term: 1), data: [5])
        try await storage.save(snapshot: newer)
        try await storage.writeSnapshotFile(older)
        try await storage.waitUntilDurable(try storage.submit(snapshot: older))
        #expect(try storage.snapshot() == newer)
    }

    @Test func bootstrapMembershipIsDurableAndIgnoredOnRestart() async throws {
        let directory = try TemporaryDirectory()
        let bootstrap = BootstrapLog(members: ConfState(voters: [1, 2, 3]))
        do {
            let storage = try DurableLogStorage.open(directory: directory.path, bootstrap: ConfState(voters: [1, 2, 3]), walOptions: smallSegments)
            #expect(try storage.entries(from: 1, upTo: 4, maxBytes: .max) == bootstrap.entries)
            #expect(storage.hardState == bootstrap.hardState)
            storage.close()
        }
        let storage = try DurableLogStorage.open(directory: directory.path, bootstrap: ConfState(voters: [7]), walOptions: smallSegments)
        defer { storage.close() }
        #expect(try storage.entries(from: 1, upTo: 4, maxBytes: .max) == bootstrap.entries)
        #expect(storage.lastIndex == 3)
        #expect(storage.hardState == bootstrap.hardState)
    }

    @Test func walMarkerWithoutItsSnapshotFileRefusesToOpen() async throws {
        let directory = try TemporaryDirectory()
        do {
            let storage = try DurableLogStorage.open(directory: directory.path, walOptions: .init(segmentBytes: 1 << 20))
            try await storage.save(entries: testEntries(1...10))
            try await storage.compact(to: Snapshot(metadata: SnapshotMetadata(index: 5, term: 1), data: [1]))
            storage.close()
        }
        for name in try FileBytes.names(in: directory.appending("snap")) {
            try FileManager.default.removeItem(atPath: directory.appending("snap/" + name))
        }
        #expect(throws: StorageError.missingSnapshot(directory: directory.appending("snap"), index: 5, term: 1)) {
            _ = try DurableLogStorage.open(directory: directory.path, walOptions: .init(segmentBytes: 1 << 20))
        }
        // The failed open released the directory lock.
        let (log, _) = try WriteAheadLog.open(directory: directory.appending("wal"), options: .init(segmentBytes: 1 << 20))
        log.close()
    }
}
