/// Why durable Raft storage refused to open or to write.
public enum StorageError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A system call failed.
    case systemCall(SystemCallError)
    /// A WAL record that is not the torn tail of the last segment failed its checks. The node must
    /// not start: continuing could forget an acknowledged write (DESIGN.md §1).
    case corruptRecord(path: String, offset: Int, reason: String)
    /// A snapshot file failed its checksum or could not be decoded.
    case corruptSnapshot(path: String, reason: String)
    /// The WAL names a snapshot that is not in the snapshot directory.
    case missingSnapshot(directory: String, index: UInt64, term: UInt64)
    /// The replayed log has a hole that no snapshot covers.
    case logGap(path: String, offset: Int, expectedIndex: UInt64, foundIndex: UInt64)
    /// Another process (or another open in this one) holds the directory's lock.
    case locked(path: String)
    /// An earlier write or sync failed; after a failed fsync the page cache can no longer be
    /// trusted (PostgreSQL's "fsyncgate", 2018), so the log refuses all further work.
    case failed(underlying: String)
    /// The log was closed.
    case closed
    /// A caller broke the log's contract (for example, appended entries that leave a gap).
    case invalidArgument(String)

    /// A message that names what failed and where.
    public var description: String {
        switch self {
        case .systemCall(let error):
            return error.description
        case .corruptRecord(let path, let offset, let reason):
            return "corrupt WAL record in \"\(path)\" at byte offset \(offset): \(reason); "
                + "refusing to start (only a torn last record of the last segment is repaired)"
        case .corruptSnapshot(let path, let reason):
            return "corrupt snapshot \"\(path)\": \(reason)"
        case .missingSnapshot(let directory, let index, let term):
            return "the WAL records a snapshot at index \(index) term \(term), "
                + "but \"\(directory)\" does not hold it"
        case .logGap(let path, let offset, let expected, let found):
            return "WAL \"\(path)\" at byte offset \(offset): entry \(found) follows a log that "
                + "ends before \(expected), and no snapshot covers the gap"
        case .locked(let path):
            return "\"\(path)\" is locked by another process using the same data directory"
        case .failed(let underlying):
            return "the write-ahead log failed earlier and accepts no more writes: \(underlying)"
        case .closed:
            return "the write-ahead log is closed"
        case .invalidArgument(let message):
            return message
        }
    }
}
