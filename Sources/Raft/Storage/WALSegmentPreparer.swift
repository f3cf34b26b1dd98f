#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization

/// Prepares the next segment's file while the current one fills, so that rollover costs a header
/// write and a rename rather than zero-filling a segment in the middle of a group commit
/// (etcd's `filePipeline` does the same with fallocate).
///
/// A prepared file lives under the segment's temporary name (`<sequence>.wal.tmp`), which
/// recovery deletes, so a crash at any point leaves no half-made segment in the log.
final class WALSegmentPreparer {
    let directory: String
    let segmentBytes: Int
    let changes: UnsyncedChanges?
    private var inFlight: (sequence: UInt64, thread: OSThread?, failure: FailureBox)?

    /// Where the preparing thread leaves its error.
    private final class FailureBox: Sendable {
        let error = Mutex<StorageError?>(nil)
    }

    init(directory: String, segmentBytes: Int, changes: UnsyncedChanges?) {
        self.directory = directory
        self.segmentBytes = segmentBytes
        self.changes = changes
    }

    static func temporaryPath(directory: String, sequence: UInt64) -> String {
        directory + "/" + WALSegmentName.fileName(sequence: sequence) + ".tmp"
    }

    /// Creates the zero-filled, synced file for `sequence`.
    static func prepare(directory: String, sequence: UInt64, segmentBytes: Int, changes: UnsyncedChanges?) throws {
        let file = try PosixFile(
            path: temporaryPath(directory: directory, sequence: sequence), flags: O_WRONLY | O_CREAT | O_TRUNC, changes: changes)
        // A mebibyte at a time, each synced: one 64 MiB flush at the end would sit in the disk's
        // queue ahead of the live segment's group commits for tens of milliseconds.
        let chunkBytes = 1 << 20
        var offset = 0
        while offset < segmentBytes {
            let count = min(chunkBytes, segmentBytes - offset)
            try file.writeZeros(from: offset, count: count)
            try file.dataSync()
            offset += count
        }
    }

    /// Whether the file for `sequence` is being (or has been) prepared.
    func isPreparing(sequence: UInt64) -> Bool { inFlight?.sequence == sequence }

    /// Starts preparing the file for `sequence` on a thread of its own.
    func startPreparing(sequence: UInt64) {
        discard()
        let failure = FailureBox()
        let (directory, segmentBytes, changes) = (self.directory, self.segmentBytes, self.changes)
        // If no thread can be had, `take` prepares the file itself.
        let thread = try? OSThread {
            do {
                try WALSegmentPreparer.prepare(directory: directory, sequence: sequence, segmentBytes: segmentBytes, changes: changes)
            } catch {
                failure.error.withLock { $0 = error as? StorageError ?? .failed(underlying: "\(error)") }
            }
        }
        inFlight = (sequence, thread, failure)
    }

    /// The temporary path of a prepared file for `sequence`, waiting for it if need be.
    func take(sequence: UInt64) throws -> String {
        let path = WALSegmentPreparer.temporaryPath(directory: directory, sequence: sequence)
        if let inFlight, inFlight.sequence == sequence, let thread = inFlight.thread {
            self.inFlight = nil
            thread.join()
            if let failure = inFlight.failure.error.withLock({ $0 }) { throw failure }
            return path
        }
        discard()
        try WALSegmentPreparer.prepare(directory: directory, sequence: sequence, segmentBytes: segmentBytes, changes: changes)
        return path
    }

    /// Waits for any preparation in flight and deletes its file.
    func discard() {
        guard let inFlight else { return }
        self.inFlight = nil
        inFlight.thread?.join()
        // Recovery deletes a leftover temporary file anyway, so a failure here costs nothing.
        try? FileSystem.unlink(WALSegmentPreparer.temporaryPath(directory: directory, sequence: inFlight.sequence), changes: changes)
    }
}
