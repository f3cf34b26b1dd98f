#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// What a power cut would take back: every write to a file since that file's last fsync or
/// fdatasync, and every creation, rename and removal in a directory since that directory's last
/// fsync. Storage opened with one records an undo entry before each such change; `cutPower`
/// then rolls the files back to what a disk would hold after losing power, and fails every
/// later call, as a dead machine would.
///
/// This exists for tests. A SIGKILL keeps the page cache, so a WAL that never synced would
/// survive every kill; only a test that really loses unsynced writes can tell (the simulation's
/// `SimDisk` does the same for the pure core). The files stay real: the undo entries hold the
/// bytes a change replaced, so the model costs nothing when the storage is opened without one.
///
/// The model is the pessimistic one POSIX allows: a new file's name, a rename and an unlink are
/// durable only once their directory is synced (ext4 often does better; the code must not count
/// on it). Data writes since the last sync are all lost, or, with `.random`, each one is kept,
/// lost or torn at a 512-byte sector boundary on its own, in any combination.
public final class UnsyncedChanges: Sendable {
    /// How a power cut treats unsynced data writes. Directory changes since the last directory
    /// sync are always lost.
    public enum PowerCut: Sendable, Hashable {
        /// Every unsynced data write is lost.
        case loseEverything
        /// Each unsynced data write is independently kept, lost, or torn (a prefix of whole
        /// sectors reaches the disk), chosen by a generator seeded with `seed`.
        case random(seed: UInt64)
    }

    /// What `cutPower` did, for a test's message.
    public struct Outcome: Sendable, Hashable, CustomStringConvertible {
        /// Data writes rolled back whole.
        public var writesLost = 0
        /// Data writes cut short at a sector boundary.
        public var writesTorn = 0
        /// Data writes left as written.
        public var writesKept = 0
        /// Creations, renames and removals rolled back.
        public var directoryChangesLost = 0

        /// "lost 3 writes, tore 1, kept 0; lost 2 directory changes".
        public var description: String {
            "lost \(writesLost) writes, tore \(writesTorn), kept \(writesKept); lost \(directoryChangesLost) directory changes"
        }
    }

    private struct FileID: Hashable {
        var device: UInt64
        var inode: UInt64
    }

    private enum Undo {
        /// Bytes at `offset` replaced by a write of `count` bytes (or cut off by a truncation to
        /// `offset`), and the size the file had before.
        case bytes(file: FileID, path: String, offset: Int, old: [UInt8], count: Int, oldSize: Int)
        case created(directory: String, path: String)
        case renamed(directory: String, from: String, to: String, replaced: [UInt8]?)
        case removed(directory: String, path: String, contents: [UInt8])
    }

    private struct Journal {
        var undo: [Undo] = []
        var cut = false
    }

    private let journal = Mutex(Journal())
    private let syncHooks = Mutex<[(fragment: String, hook: @Sendable (String) -> Void)]>([])

    /// An empty record: nothing written yet.
    public init() {}

    /// Whether the power has been cut.
    public var isCut: Bool { journal.withLock { $0.cut } }

    /// Unsynced data writes and directory changes recorded now.
    public var pendingCount: Int { journal.withLock { $0.undo.count } }

    /// Runs `hook` with the path before every fsync of a file or directory whose path contains
    /// `fragment`, outside any lock: a test blocks in it to play a disk that stalls there.
    public func beforeSync(ofPathsContaining fragment: String, _ hook: @escaping @Sendable (String) -> Void) {
        syncHooks.withLock { $0.append((fragment, hook)) }
    }

    private func runSyncHooks(_ path: String) {
        for (fragment, hook) in syncHooks.withLock({ $0 }) where path.contains(fragment) { hook(path) }
    }

    // MARK: - Recording (called by PosixFile and FileSystem)

    /// Opens `path` through `open`, recording the file's creation (if `O_CREAT` made it) or the
    /// contents `O_TRUNC` discarded.
    func open(path: String, flags: Int32, _ open: () throws -> Int32) throws -> Int32 {
        try journal.withLock { journal throws -> Int32 in
            try Self.refuseIfCut(journal, "open", path)
            var info = stat()
            let existed = stat(path, &info) == 0
            let previous = existed && flags & O_TRUNC != 0 ? try Self.contents(of: path) : nil
            let descriptor = try open()
            if !existed && flags & O_CREAT != 0 {
                journal.undo.append(.created(directory: Self.directory(of: path), path: path))
            } else if let previous, !previous.isEmpty {
                journal.undo.append(.bytes(
                    file: try Self.identity(descriptor, path), path: path, offset: 0, old: previous, count: 0,
                    oldSize: previous.count))
            }
            return descriptor
        }
    }

    /// Writes `count` bytes at `offset` through `write`, recording the bytes they replace.
    func write(
        descriptor: Int32, path: String, offset: Int, count: Int, _ write: () throws -> Void
    ) throws {
        try journal.withLock { journal throws in
            try Self.refuseIfCut(journal, "pwrite", path)
            let size = try Self.size(descriptor, path)
            let old = try Self.read(descriptor, path, from: offset, count: max(0, min(count, size - offset)))
            try write()
            journal.undo.append(.bytes(
                file: try Self.identity(descriptor, path), path: path, offset: offset, old: old, count: count, oldSize: size))
        }
    }

    /// Truncates through `truncate` to `newSize`, recording the bytes cut off.
    func truncate(descriptor: Int32, path: String, to newSize: Int, _ truncate: () throws -> Void) throws {
        try journal.withLock { journal throws in
            try Self.refuseIfCut(journal, "ftruncate", path)
            let size = try Self.size(descriptor, path)
            let old = try Self.read(descriptor, path, from: newSize, count: max(0, size - newSize))
            try truncate()
            journal.undo.append(.bytes(
                file: try Self.identity(descriptor, path), path: path, offset: newSize, old: old, count: 0, oldSize: size))
        }
    }

    /// Syncs through `sync`; once it returns, the file's data writes are durable.
    func sync(descriptor: Int32, path: String, call: String, _ sync: () throws -> Void) throws {
        runSyncHooks(path)
        try journal.withLock { journal throws in
            try Self.refuseIfCut(journal, call, path)
            let file = try Self.identity(descriptor, path)
            try sync()
            journal.undo.removeAll { undo in
                if case .bytes(let written, _, _, _, _, _) = undo { return written == file }
                return false
            }
        }
    }

    /// Syncs directory `path` through `sync`; once it returns, the creations, renames and
    /// removals in it are durable.
    func syncDirectory(path: String, _ sync: () throws -> Void) throws {
        runSyncHooks(path)
        try journal.withLock { journal throws in
            try Self.refuseIfCut(journal, "fsync", path)
            try sync()
            var settled: [Undo] = []
            journal.undo.removeAll { undo in
                guard Self.directory(of: undo) == path else { return false }
                settled.append(undo)
                return true
            }
            // A durable rename moves the file's pending writes to its new name; a durable
            // removal leaves nothing for them to restore.
            for undo in settled {
                switch undo {
                case .renamed(_, let from, let to, _):
                    journal.undo = journal.undo.map { Self.renaming($0, from: from, to: to) }
                case .removed(_, let removed, _):
                    journal.undo.removeAll { undo in
                        if case .bytes(_, let path, _, _, _, _) = undo { return path == removed }
                        return false
                    }
                default:
                    break
                }
            }
        }
    }

    /// Renames through `rename`, recording what the target held before.
    func rename(from: String, to: String, _ rename: () throws -> Void) throws {
        try journal.withLock { journal throws in
            try Self.refuseIfCut(journal, "rename", "\(from) -> \(to)")
            var info = stat()
            let replaced = stat(to, &info) == 0 ? try Self.contents(of: to) : nil
            try rename()
            journal.undo.append(.renamed(directory: Self.directory(of: to), from: from, to: to, replaced: replaced))
        }
    }

    /// Unlinks through `unlink`, recording the file's contents.
    func unlink(path: String, _ unlink: () throws -> Void) throws {
        try journal.withLock { journal throws in
            try Self.refuseIfCut(journal, "unlink", path)
            let contents = try Self.contents(of: path)
            try unlink()
            journal.undo.append(.removed(directory: Self.directory(of: path), path: path, contents: contents))
        }
    }

    /// The bytes of `path` that would survive a power cut now (every unsynced write to it
    /// lost), without cutting anything: a test can check that what was acknowledged is already
    /// durable at the moment it is acknowledged. Empty for a file whose creation is not durable.
    public func contentsAfterPowerCut(of path: String) throws -> [UInt8] {
        try journal.withLock { journal throws -> [UInt8] in
            let created = journal.undo.contains { undo in
                if case .created(_, let created) = undo { return created == path }
                return false
            }
            if created { return [] }
            var bytes = try Self.contents(of: path)
            for undo in journal.undo.reversed() {
                guard case .bytes(_, let written, let offset, let old, _, let oldSize) = undo, written == path else { continue }
                if bytes.count < offset + old.count { bytes += [UInt8](repeating: 0, count: offset + old.count - bytes.count) }
                bytes.replaceSubrange(offset..<(offset + old.count), with: old)
                if bytes.count > oldSize {
                    bytes.removeLast(bytes.count - oldSize)
                } else if bytes.count < oldSize {
                    bytes += [UInt8](repeating: 0, count: oldSize - bytes.count)
                }
            }
            return bytes
        }
    }

    // MARK: - The power cut

    /// Rolls every file back to what the disk holds after a power cut now, newest change first,
    /// and makes every later recorded call fail with EIO. A second cut does nothing.
    @discardableResult
    public func cutPower(_ mode: PowerCut = .loseEverything) throws -> Outcome {
        try journal.withLock { journal throws -> Outcome in
            guard !journal.cut else { return Outcome() }
            journal.cut = true
            var random: SplitMix64? = if case .random(let seed) = mode { SplitMix64(seed: seed) } else { nil }
            var outcome = Outcome()
            for undo in journal.undo.reversed() {
                try Self.roll(back: undo, random: &random, outcome: &outcome)
            }
            journal.undo.removeAll()
            return outcome
        }
    }

    private static func roll(back undo: Undo, random: inout SplitMix64?, outcome: inout Outcome) throws {
        switch undo {
        case .bytes(_, let path, let offset, let old, let count, let oldSize):
            // How much of the write reached the disk: nothing, all of it, or whole sectors of it.
            var kept = 0
            if var generator = random {
                switch generator.next() % 3 {
                case 0: kept = 0
                case 1: kept = count
                default: kept = count == 0 ? 0 : Int(generator.next() % UInt64(count / 512 + 1)) * 512
                }
                random = generator
            }
            if kept >= count && count > 0 {
                outcome.writesKept += 1
                return
            }
            if kept > 0 { outcome.writesTorn += 1 } else { outcome.writesLost += 1 }
            let file = try PosixFile(path: path, flags: O_WRONLY)
            if kept < old.count {
                try old[kept...].withUnsafeBytes { try file.rawWrite($0, at: offset + kept) }
            }
            // A write that grew the file keeps the part that reached the disk; one that did not
            // leaves the size it found.
            try file.rawTruncate(to: max(oldSize, min(offset + kept, offset + count)))
        case .created(_, let path):
            outcome.directoryChangesLost += 1
            guard Glibc.unlink(path) == 0 || Glibc.errno == ENOENT else { throw PosixFile.error("unlink", path) }
        case .renamed(_, let from, let to, let replaced):
            outcome.directoryChangesLost += 1
            guard Glibc.rename(to, from) == 0 else { throw PosixFile.error("rename", "\(to) -> \(from)") }
            if let replaced { try restore(path: to, contents: replaced) }
        case .removed(_, let path, let contents):
            outcome.directoryChangesLost += 1
            try restore(path: path, contents: contents)
        }
    }

    // MARK: - Helpers

    private static func refuseIfCut(_ journal: Journal, _ call: String, _ path: String) throws {
        if journal.cut { throw StorageError.systemCall(SystemCallError(call: call, path: path, errno: EIO)) }
    }

    private static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func directory(of undo: Undo) -> String? {
        switch undo {
        case .bytes: return nil
        case .created(let directory, _), .renamed(let directory, _, _, _), .removed(let directory, _, _): return directory
        }
    }

    private static func renaming(_ undo: Undo, from: String, to: String) -> Undo {
        guard case .bytes(let file, let path, let offset, let old, let count, let oldSize) = undo, path == from else { return undo }
        return .bytes(file: file, path: to, offset: offset, old: old, count: count, oldSize: oldSize)
    }

    private static func identity(_ descriptor: Int32, _ path: String) throws -> FileID {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw PosixFile.error("fstat", path) }
        return FileID(device: UInt64(info.st_dev), inode: UInt64(info.st_ino))
    }

    private static func size(_ descriptor: Int32, _ path: String) throws -> Int {
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw PosixFile.error("fstat", path) }
        return Int(info.st_size)
    }

    /// Reads `count` bytes at `offset` of the file behind `descriptor`, which may be open for
    /// writing only: through a read-only descriptor of the same file from /proc/self/fd.
    private static func read(_ descriptor: Int32, _ path: String, from offset: Int, count: Int) throws -> [UInt8] {
        guard count > 0 else { return [] }
        let reader = try PosixFile(path: "/proc/self/fd/\(descriptor)", flags: O_RDONLY)
        var bytes = [UInt8](repeating: 0, count: count)
        let done = bytes.withUnsafeMutableBytes { pread(reader.descriptor, $0.baseAddress, count, off_t(offset)) }
        guard done >= 0 else { throw PosixFile.error("pread", path) }
        return Array(bytes[0..<done])
    }

    private static func contents(of path: String) throws -> [UInt8] {
        try PosixFile(path: path, flags: O_RDONLY).readAll()
    }

    private static func restore(path: String, contents: [UInt8]) throws {
        let file = try PosixFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC)
        try contents.withUnsafeBytes { try file.rawWrite($0, at: 0) }
    }
}
