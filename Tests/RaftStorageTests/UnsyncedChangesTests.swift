#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import Raft

/// The power-cut model itself: if it kept what it should lose, every power-cut test of the WAL
/// would pass against a WAL that never syncs.
@Suite("Unsynced changes")
struct UnsyncedChangesTests {
    @Test func anUnsyncedWriteIsLostAndASyncedOneKept() throws {
        let directory = try TemporaryDirectory()
        let changes = UnsyncedChanges()
        let path = directory.appending("data")
        try FileBytes.write([1, 1, 1, 1], to: path)
        let file = try PosixFile(path: path, flags: O_WRONLY, changes: changes)
        try file.write([2, 2], at: 0)
        try file.dataSync()
        try file.write([3, 3, 3, 3, 3, 3], at: 2)
        #expect(try changes.contentsAfterPowerCut(of: path) == [2, 2, 1, 1])
        #expect(try FileBytes.read(path) == [2, 2, 3, 3, 3, 3, 3, 3])
        let outcome = try changes.cutPower()
        #expect(outcome.writesLost == 1)
        #expect(try FileBytes.read(path) == [2, 2, 1, 1])
    }

    @Test func truncationIsUndoneUntilSynced() throws {
        let directory = try TemporaryDirectory()
        let changes = UnsyncedChanges()
        let path = directory.appending("data")
        try FileBytes.write([1, 2, 3, 4, 5], to: path)
        let file = try PosixFile(path: path, flags: O_WRONLY, changes: changes)
        try file.truncate(to: 2)
        try changes.cutPower()
        #expect(try FileBytes.read(path) == [1, 2, 3, 4, 5])
    }

    @Test func directoryChangesNeedTheDirectorySynced() throws {
        let directory = try TemporaryDirectory()
        let changes = UnsyncedChanges()
        let kept = directory.appending("kept")
        let created = directory.appending("created")
        let removed = directory.appending("removed")
        try FileBytes.write([9], to: removed)
        do {
            let file = try PosixFile(path: kept, flags: O_WRONLY | O_CREAT, changes: changes)
            try file.write([7], at: 0)
            try file.sync()
        }
        try FileSystem.syncDirectory(directory.path, changes: changes)
        // After the directory sync: a new file whose data is synced but whose name is not, a
        // rename and an unlink, none of them durable.
        do {
            let file = try PosixFile(path: created + ".tmp", flags: O_WRONLY | O_CREAT, changes: changes)
            try file.write([8], at: 0)
            try file.sync()
        }
        try FileSystem.rename(created + ".tmp", created, changes: changes)
        try FileSystem.unlink(removed, changes: changes)
        #expect(try changes.contentsAfterPowerCut(of: kept) == [7])
        let outcome = try changes.cutPower()
        #expect(outcome.directoryChangesLost == 3)
        let names = try FileSystem.list(directory.path).sorted()
        #expect(names == ["kept", "removed"])
        #expect(try FileBytes.read(kept) == [7])
        #expect(try FileBytes.read(removed) == [9])
    }

    @Test func aDurableRenameCarriesPendingWritesToTheNewName() throws {
        let directory = try TemporaryDirectory()
        let changes = UnsyncedChanges()
        let old = directory.appending("old")
        let new = directory.appending("new")
        try FileBytes.write([1, 1], to: old)
        let file = try PosixFile(path: old, flags: O_WRONLY, changes: changes)
        try file.write([5, 5], at: 0)
        try FileSystem.rename(old, new, changes: changes)
        try FileSystem.syncDirectory(directory.path, changes: changes)
        try changes.cutPower()
        #expect(try FileBytes.read(new) == [1, 1])
        #expect(try FileSystem.list(directory.path) == ["new"])
    }

    @Test func afterTheCutEveryCallFailsWithEIO() throws {
        let directory = try TemporaryDirectory()
        let changes = UnsyncedChanges()
        let file = try PosixFile(path: directory.appending("data"), flags: O_WRONLY | O_CREAT, changes: changes)
        try changes.cutPower()
        #expect(changes.isCut)
        let error = #expect(throws: StorageError.self) { try file.write([1], at: 0) }
        #expect(error == .systemCall(SystemCallError(call: "pwrite", path: directory.appending("data"), errno: EIO)))
        #expect(throws: StorageError.self) { try file.dataSync() }
        #expect(throws: StorageError.self) { try FileSystem.syncDirectory(directory.path, changes: changes) }
    }

    /// Random cuts keep, lose or tear each write, a tear always at a sector boundary.
    @Test func randomCutsKeepLoseOrTearAtSectorBoundaries() throws {
        var seen = UnsyncedChanges.Outcome()
        for seed in UInt64(1)...40 {
            let directory = try TemporaryDirectory()
            let changes = UnsyncedChanges()
            let path = directory.appending("data")
            try FileBytes.write([UInt8](repeating: 0, count: 8192), to: path)
            let file = try PosixFile(path: path, flags: O_WRONLY, changes: changes)
            try file.write([UInt8](repeating: 0xAB, count: 4096), at: 1024)
            let outcome = try changes.cutPower(.random(seed: seed))
            seen.writesKept += outcome.writesKept
            seen.writesLost += outcome.writesLost
            seen.writesTorn += outcome.writesTorn
            let bytes = try FileBytes.read(path)
            #expect(bytes.count == 8192)
            let written = bytes.indices.filter { bytes[$0] == 0xAB }
            // What reached the disk is a prefix of the write, in whole sectors.
            #expect(written.first.map { $0 == 1024 } ?? true)
            #expect(written.count % 512 == 0 && written == Array(1024..<(1024 + written.count)))
        }
        #expect(seen.writesKept > 0 && seen.writesLost > 0 && seen.writesTorn > 0, "\(seen)")
    }
}
