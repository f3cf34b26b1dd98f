import Foundation
import Testing
@testable import Raft

@Suite("Snapshot store")
struct SnapshotStoreTests {
    private func snapshot(index: UInt64, term: UInt64 = 2) -> Snapshot {
        Snapshot(
            metadata: SnapshotMetadata(index: index, term: term, confState: ConfState(voters: [1, 2, 3], learners: [9])),
            data: (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* Int(index)) })
    }

    @Test func savedSnapshotLoadsBackEqual() throws {
        let directory = try TemporaryDirectory()
        let store = try SnapshotStore(directory: directory.path)
        try store.save(snapshot(index: 10))
        #expect(try store.load(index: 10, term: 2) == snapshot(index: 10))
        #expect(try SnapshotStore(directory: directory.path).loadNewest() == snapshot(index: 10))
        #expect(try FileBytes.names(in: directory.path) == [SnapshotStore.fileName(for: snapshot(index: 10).metadata)])
    }

    @Test func pruningKeepsTheNamedSnapshotEverythingNewerAndOneOlder() throws {
        let directory = try TemporaryDirectory()
        let store = try SnapshotStore(directory: directory.path, olderRetainedCount: 1)
        for index in [10, 20, 30, 40, 50] as [UInt64] { try store.save(snapshot(index: index)) }
        #expect(try store.list().map(\.index) == [10, 20, 30, 40, 50])
        // The WAL durably names 40; 50 may be on its way.
        try store.prune(olderThan: 40)
        #expect(try store.list().map(\.index) == [30, 40, 50])
        #expect(try store.loadNewest()?.metadata.index == 50)
    }

    @Test func flippedByteFailsTheChecksumNamingTheFile() throws {
        let directory = try TemporaryDirectory()
        let store = try SnapshotStore(directory: directory.path)
        try store.save(snapshot(index: 7))
        let path = directory.appending(SnapshotStore.fileName(for: snapshot(index: 7).metadata))
        try FileBytes.flip(path, at: 500)
        let error = #expect(throws: StorageError.self) { _ = try store.load(index: 7, term: 2) }
        guard case .corruptSnapshot(let reportedPath, let reason) = error else {
            Issue.record("expected corruptSnapshot, got \(String(describing: error))")
            return
        }
        #expect(reportedPath == path)
        #expect(reason.hasPrefix("checksum mismatch"))
    }

    @Test func truncatedFileIsReportedAsCorrupt() throws {
        let directory = try TemporaryDirectory()
        let store = try SnapshotStore(directory: directory.path)
        try store.save(snapshot(index: 7))
        let path = directory.appending(SnapshotStore.fileName(for: snapshot(index: 7).metadata))
        try FileBytes.write(Array(try FileBytes.read(path).prefix(100)), to: path)
        #expect(throws: StorageError.corruptSnapshot(path: path, reason: "body is 76 bytes, the header says 1056")) {
            _ = try store.load(index: 7, term: 2)
        }
    }

    @Test func missingSnapshotIsReportedWithItsIndex() throws {
        let directory = try TemporaryDirectory()
        let store = try SnapshotStore(directory: directory.path)
        #expect(throws: StorageError.missingSnapshot(directory: directory.path, index: 5, term: 1)) {
            _ = try store.load(index: 5, term: 1)
        }
    }

    @Test func leftoverTemporaryFileIsRemovedOnOpen() throws {
        let directory = try TemporaryDirectory()
        let stray = directory.appending("0000000000000001-0000000000000009.snap.tmp")
        try FileBytes.write([1, 2, 3], to: stray)
        let store = try SnapshotStore(directory: directory.path)
        #expect(try store.list().isEmpty)
        #expect(!FileManager.default.fileExists(atPath: stray))
    }
}
