#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Application snapshots on disk, one file each, named `<term>-<index>.snap` in hexadecimal.
///
/// A snapshot is written under a temporary name, fsynced, renamed into place and the directory
/// fsynced (DESIGN.md §1), so a crash leaves either the complete file or none. The file carries a
/// CRC-32C over everything after its header, checked on every load.
///
///     offset 0   8 bytes    magic "FLSNAP01"
///     offset 8   UInt64 LE  body length
///     offset 16  UInt32 LE  CRC-32C of the body
///     offset 20  UInt32     zero
///     offset 24  body: snapshot metadata, then the application's data
public final class SnapshotStore: Sendable {
    private static let magic: [UInt8] = Array("FLSNAP01".utf8)
    private static let headerBytes = 24
    static let suffix = ".snap"

    /// The directory holding the snapshot files.
    public let directory: String
    /// How many snapshots older than the one the WAL names are kept after pruning (one by
    /// default), so that a snapshot damaged on disk after the fact leaves another to inspect.
    public let olderRetainedCount: Int
    /// Where changes are recorded until synced, for tests that cut the power; nil in real use.
    let changes: UnsyncedChanges?

    /// Opens (creating if needed) `directory` and deletes temporary files a crash left behind.
    public init(directory: String, olderRetainedCount: Int = 1, unsyncedChanges: UnsyncedChanges? = nil) throws {
        precondition(olderRetainedCount >= 0, "a negative count of snapshots to keep")
        self.directory = directory
        self.olderRetainedCount = olderRetainedCount
        changes = unsyncedChanges
        try FileSystem.makeDirectories(directory)
        for name in try FileSystem.list(directory) where name.hasSuffix(Self.suffix + ".tmp") {
            try FileSystem.unlink(directory + "/" + name, changes: changes)
        }
    }

    /// The file name for a snapshot at `metadata`: term first, so names sort by (term, index).
    static func fileName(for metadata: SnapshotMetadata) -> String {
        hex(metadata.term) + "-" + hex(metadata.index) + suffix
    }

    private static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }

    /// (term, index) of every complete snapshot file, oldest first.
    public func list() throws -> [(term: UInt64, index: UInt64)] {
        var found: [(term: UInt64, index: UInt64)] = []
        for name in try FileSystem.list(directory) where name.hasSuffix(Self.suffix) {
            let parts = name.dropLast(Self.suffix.count).split(separator: "-")
            guard parts.count == 2, let term = UInt64(parts[0], radix: 16), let index = UInt64(parts[1], radix: 16) else {
                continue
            }
            found.append((term, index))
        }
        return found.sorted { ($0.index, $0.term) < ($1.index, $1.term) }
    }

    /// Makes `snapshot` durable. Deletes nothing: until the WAL records the new snapshot, the
    /// one it names must survive a crash (see `prune(olderThan:)`). Blocks on fsync.
    public func save(_ snapshot: Snapshot) throws {
        var body = LittleEndianWriter(reservingCapacity: 64 + snapshot.data.count)
        snapshot.metadata.appendStorageEncoding(to: &body)
        body.append(snapshot.data)
        var file = LittleEndianWriter(reservingCapacity: Self.headerBytes + body.bytes.count)
        file.append(Self.magic)
        file.append(UInt64(body.bytes.count))
        file.append(CRC32C.checksum(body.bytes))
        file.append(UInt32(0))
        file.append(body.bytes)

        let path = directory + "/" + Self.fileName(for: snapshot.metadata)
        let temporaryPath = path + ".tmp"
        do {
            let temporary = try PosixFile(path: temporaryPath, flags: O_WRONLY | O_CREAT | O_TRUNC, changes: changes)
            try temporary.write(file.bytes, at: 0)
            try temporary.sync()
        }
        try FileSystem.rename(temporaryPath, path, changes: changes)
        try FileSystem.syncDirectory(directory, changes: changes)
    }

    /// Deletes snapshots older than `index` (the one the WAL durably names), keeping the newest
    /// `olderRetainedCount` of them. Never touches `index` itself or anything newer: a newer file
    /// may be a snapshot whose WAL record is still on its way to the disk.
    public func prune(olderThan index: UInt64) throws {
        let older = try list().filter { $0.index < index }
        guard older.count > olderRetainedCount else { return }
        for old in older.dropLast(olderRetainedCount) {
            try FileSystem.unlink(
                directory + "/" + Self.fileName(for: SnapshotMetadata(index: old.index, term: old.term)), changes: changes)
        }
        try FileSystem.syncDirectory(directory, changes: changes)
    }

    /// Loads and verifies the snapshot at exactly `index` and `term`.
    /// Throws `.missingSnapshot` if there is none, `.corruptSnapshot` if it fails its checks.
    public func load(index: UInt64, term: UInt64) throws -> Snapshot {
        let path = directory + "/" + Self.fileName(for: SnapshotMetadata(index: index, term: term))
        let bytes: [UInt8]
        do {
            bytes = try PosixFile(path: path, flags: O_RDONLY).readAll()
        } catch StorageError.systemCall(let error) where error.errno == ENOENT {
            throw StorageError.missingSnapshot(directory: directory, index: index, term: term)
        }
        let snapshot = try Self.decode(bytes, path: path)
        guard snapshot.metadata.index == index, snapshot.metadata.term == term else {
            throw StorageError.corruptSnapshot(
                path: path,
                reason: "holds index \(snapshot.metadata.index) term \(snapshot.metadata.term), not what its name says")
        }
        return snapshot
    }

    /// Loads the newest snapshot, if any.
    public func loadNewest() throws -> Snapshot? {
        guard let newest = try list().last else { return nil }
        return try load(index: newest.index, term: newest.term)
    }

    static func decode(_ bytes: [UInt8], path: String) throws -> Snapshot {
        var reader = LittleEndianReader(bytes[...])
        do {
            guard try reader.readBytes(magic.count) == magic else {
                throw StorageError.corruptSnapshot(path: path, reason: "bad magic number")
            }
            let bodyBytes = try reader.readUInt64()
            let stored = try reader.readUInt32()
            _ = try reader.readUInt32()
            guard bodyBytes == UInt64(reader.remaining) else {
                throw StorageError.corruptSnapshot(
                    path: path, reason: "body is \(reader.remaining) bytes, the header says \(bodyBytes)")
            }
            let computed = CRC32C.checksum(bytes[headerBytes...])
            guard computed == stored else {
                throw StorageError.corruptSnapshot(
                    path: path,
                    reason: "checksum mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))")
            }
            let metadata = try SnapshotMetadata.decodeStorageEncoding(from: &reader)
            return Snapshot(metadata: metadata, data: reader.readRest())
        } catch let error as StorageError {
            throw error
        } catch {
            throw StorageError.corruptSnapshot(path: path, reason: "shorter than its header says")
        }
    }
}
