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
    private var inFlight: (sequence: UInt64, thread: OSThread?, preparation: Preparation)?

    /// What the preparing thread and the writer share: its error, and whether the writer waits.
    final class Preparation: Sendable {
        let error = Mutex<StorageError?>(nil)
        /// Set once the writer waits for the file: from then on no pause between chunks, and a
        /// pause under way ends at once.
        private let hurried = ConditionLock(false)

        /// The pause after each mebibyte in the background: preparation starts when the live
        /// segment is half full, and the 64 chunks of a 64 MiB segment then take about 3.3 s
        /// rather than a burst of a few hundred milliseconds that every server of a cluster,
        /// rolling over together, spends at once.
        static let pause: Duration = .milliseconds(50)

        func hurry() {
            hurried.withLock { $0 = true }
            hurried.signal()
        }

        func pauseUnlessHurried() {
            hurried.withLock(whenReady: { $0 }, timeout: Self.pause) { _ in }
        }
    }

    init(directory: String, segmentBytes: Int, changes: UnsyncedChanges?) {
        self.directory = directory
        self.segmentBytes = segmentBytes
        self.changes = changes
    }

    static func temporaryPath(directory: String, sequence: UInt64) -> String {
        directory + "/" + WALSegmentName.fileName(sequence: sequence) + ".tmp"
    }

    /// Creates the zero-filled, synced file for `sequence`; with `preparation`, pausing between
    /// chunks until it says to hurry.
    static func prepare(
        directory: String, sequence: UInt64, segmentBytes: Int, changes: UnsyncedChanges?, preparation: Preparation? = nil
    ) throws {
        let path = temporaryPath(directory: directory, sequence: sequence)
        let between: () -> Void = { preparation?.pauseUnlessHurried() }
        // Power-cut tests record every change through the page cache (`UnsyncedChanges`), so
        // they take the buffered way; so does a file system that refuses O_DIRECT (tmpfs
        // before Linux 6.6) and an architecture whose O_DIRECT is not known here.
        if changes == nil, segmentBytes % SegmentZeroFill.blockBytes == 0,
            try SegmentZeroFill.direct(path: path, segmentBytes: segmentBytes, between: between)
        {
            return
        }
        let file = try PosixFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC, changes: changes)
        try SegmentZeroFill.inChunks(of: segmentBytes, between: between) { offset, count in
            try file.writeZeros(from: offset, count: count)
            try file.dataSync()
        }
    }

    /// Whether the file for `sequence` is being (or has been) prepared.
    func isPreparing(sequence: UInt64) -> Bool { inFlight?.sequence == sequence }

    /// Starts preparing the file for `sequence` on a thread of its own.
    func startPreparing(sequence: UInt64) {
        discard()
        let preparation = Preparation()
        let (directory, segmentBytes, changes) = (self.directory, self.segmentBytes, self.changes)
        // If no thread can be had, `take` prepares the file itself.
        let thread = try? OSThread {
            do {
                try WALSegmentPreparer.prepare(
                    directory: directory, sequence: sequence, segmentBytes: segmentBytes, changes: changes, preparation: preparation)
            } catch {
                preparation.error.withLock { $0 = error as? StorageError ?? .failed(underlying: "\(error)") }
            }
        }
        inFlight = (sequence, thread, preparation)
    }

    /// The temporary path of a prepared file for `sequence`, waiting for it if need be.
    func take(sequence: UInt64) throws -> String {
        let path = WALSegmentPreparer.temporaryPath(directory: directory, sequence: sequence)
        if let inFlight, inFlight.sequence == sequence, let thread = inFlight.thread {
            self.inFlight = nil
            inFlight.preparation.hurry()
            thread.join()
            if let failure = inFlight.preparation.error.withLock({ $0 }) { throw failure }
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
        inFlight.preparation.hurry()
        inFlight.thread?.join()
        // Recovery deletes a leftover temporary file anyway, so a failure here costs nothing.
        try? FileSystem.unlink(WALSegmentPreparer.temporaryPath(directory: directory, sequence: inFlight.sequence), changes: changes)
    }
}
