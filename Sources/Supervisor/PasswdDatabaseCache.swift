import Glibc
import Synchronization

/// Which file a descriptor holds and its last change: device, inode, size, modification and
/// status-change times. A rewrite in place changes the times (ctime on any write or chmod), a
/// replacement by rename changes the inode. nil: the file does not exist. (Where a filesystem's
/// timestamps are coarse, a same-length rewrite within one clock tick of the last read would go
/// unseen until the file changes again; Linux 6.13+ gives tmpfs, ext4, xfs and btrfs fine-grained
/// times once they have been read, as here.)
struct FileStamp: Sendable, Hashable {
    var device: UInt
    var inode: UInt
    var size: Int
    var modifiedSeconds: Int
    var modifiedNanoseconds: Int
    var changedSeconds: Int
    var changedNanoseconds: Int

    init?(descriptor: Int32) {
        guard descriptor >= 0 else { return nil }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { return nil }
        device = info.st_dev
        inode = info.st_ino
        size = info.st_size
        modifiedSeconds = info.st_mtim.tv_sec
        modifiedNanoseconds = info.st_mtim.tv_nsec
        changedSeconds = info.st_ctim.tv_sec
        changedNanoseconds = info.st_ctim.tv_nsec
    }
}

/// Parsed /etc/passwd and /etc/group per root directory, reused while both files keep their
/// stamps: every launch of a service resolves its user, and reading and parsing the two files
/// each time was a noticeable share of a start.
final class PasswdDatabaseCache: Sendable {
    private struct Entry: Sendable {
        var stamps: [FileStamp?]
        var database: PasswdDatabase
    }

    /// Roots of services removed long ago would stay forever: past this many, start over.
    static let capacity = 256
    private let entries = Mutex<[String: Entry]>([:])

    func database(root: String, stamps: [FileStamp?]) -> PasswdDatabase? {
        entries.withLock { entries in
            guard let entry = entries[root], entry.stamps == stamps else { return nil }
            return entry.database
        }
    }

    func store(_ database: PasswdDatabase, root: String, stamps: [FileStamp?]) {
        entries.withLock { entries in
            if entries[root] == nil && entries.count >= Self.capacity { entries.removeAll() }
            entries[root] = Entry(stamps: stamps, database: database)
        }
    }
}
