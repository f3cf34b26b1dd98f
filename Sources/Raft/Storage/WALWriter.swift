#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// A batch handed to the writer thread: records already framed by the submitting thread (so the
/// checksumming is spread over the callers), plus what the writer must remember to start the next
/// segment and to release old ones.
struct WALBatch: Sendable {
    var ticket: UInt64
    var bytes: [UInt8]
    var maxEntryIndex: UInt64?
    var lastHardState: HardState?
    var lastSnapshot: SnapshotMetadata?
    var recordCount: Int
    /// False for a batch that may wait for a later sync (see `WriteAheadLog.submit`).
    var mustSync = true
}

/// A segment the writer knows about, oldest first.
struct WALSegmentInfo: Sendable {
    var sequence: UInt64
    var path: String
    /// The largest entry index written into the segment, zero if none: the segment may be
    /// released once a durable snapshot covers it.
    var maxEntryIndex: UInt64
}

/// The state only the writer thread touches: the open segment and where it ends.
final class WALWriter {
    let directory: String
    let segmentBytes: Int
    let changes: UnsyncedChanges?
    private var current: PosixFile
    private var offset: Int
    /// The offset after the records every segment starts with; a segment holding no more than
    /// these is never rolled over (a batch larger than a segment gets a segment to itself).
    private var headerEnd: Int
    private(set) var segments: [WALSegmentInfo]
    private var hardState: HardState
    private var snapshot: SnapshotMetadata
    private var buffer: [UInt8] = []
    private let preparer: WALSegmentPreparer
    private(set) var syncCount = 0
    private(set) var segmentsCreated = 0
    private(set) var segmentsReleased = 0

    init(
        directory: String, segmentBytes: Int, changes: UnsyncedChanges?, current: PosixFile, offset: Int, headerEnd: Int,
        segments: [WALSegmentInfo], hardState: HardState, snapshot: SnapshotMetadata
    ) {
        self.directory = directory
        self.segmentBytes = segmentBytes
        self.changes = changes
        self.current = current
        self.offset = offset
        self.headerEnd = headerEnd
        self.segments = segments
        self.hardState = hardState
        self.snapshot = snapshot
        preparer = WALSegmentPreparer(directory: directory, segmentBytes: segmentBytes, changes: changes)
    }

    /// Writes a group of batches with as few writes and fdatasyncs as the segment size allows:
    /// one of each unless the group crosses a rollover. This is the group commit: every caller
    /// whose batch is in the group is acknowledged by the same fdatasync.
    func write(_ group: [WALBatch]) throws {
        let snapshotBefore = snapshot.index
        buffer.removeAll(keepingCapacity: true)
        for batch in group {
            if offset + buffer.count + batch.bytes.count > segmentBytes && offset + buffer.count > headerEnd {
                try flush()
                try rollover()
            }
            buffer.append(contentsOf: batch.bytes)
            if let index = batch.maxEntryIndex, let last = segments.indices.last {
                segments[last].maxEntryIndex = max(segments[last].maxEntryIndex, index)
            }
            if let state = batch.lastHardState { hardState = state }
            if let metadata = batch.lastSnapshot, metadata.index >= snapshot.index { snapshot = metadata }
        }
        try flush()
        if snapshot.index > snapshotBefore { try releaseSegments() }
        // Zero-filling the next segment competes with group commits for the disk, so it starts
        // only once this segment is half full, which leaves it half a segment of log to finish.
        let next = (segments.last?.sequence ?? 0) + 1
        if offset >= segmentBytes / 2 && !preparer.isPreparing(sequence: next) {
            preparer.startPreparing(sequence: next)
        }
    }

    private func flush() throws {
        guard !buffer.isEmpty else { return }
        try current.write(buffer, at: offset)
        try current.dataSync()
        syncCount += 1
        offset += buffer.count
        buffer.removeAll(keepingCapacity: true)
    }

    /// Ends the current segment and starts the next. The old segment is cut to its exact length
    /// first, so that recovery can hold every segment but the last to "no bad byte at all". The
    /// new one is built under a temporary name and renamed only once complete and synced, so a
    /// named segment always has its header (etcd's wal.cut does the same dance).
    private func rollover() throws {
        try current.truncate(to: offset)
        try current.dataSync()
        let sequence = (segments.last?.sequence ?? 0) + 1
        let (file, end) = try WALWriter.createSegment(
            directory: directory, sequence: sequence, preparedPath: try preparer.take(sequence: sequence),
            hardState: hardState, snapshot: snapshot, changes: changes)
        current = file
        offset = end
        headerEnd = end
        segments.append(WALSegmentInfo(sequence: sequence, path: file.path, maxEntryIndex: 0))
        segmentsCreated += 1
    }

    /// Creates a complete, durable segment from a zero-filled file: header, then the current hard
    /// state and snapshot marker, so that every earlier segment can be released without losing
    /// them. Written under the temporary name, synced, then renamed and the directory synced, so a
    /// named segment always has its header (etcd's wal.cut does the same dance).
    static func createSegment(
        directory: String, sequence: UInt64, preparedPath: String, hardState: HardState, snapshot: SnapshotMetadata,
        changes: UnsyncedChanges?
    ) throws -> (file: PosixFile, end: Int) {
        let path = directory + "/" + WALSegmentName.fileName(sequence: sequence)
        var header: [UInt8] = []
        WALFrame.appendSegmentHeader(sequence: sequence, to: &header)
        WALFrame.append(.hardState(hardState), to: &header)
        WALFrame.append(.snapshot(snapshot), to: &header)
        do {
            let temporary = try PosixFile(path: preparedPath, flags: O_WRONLY, changes: changes)
            try temporary.write(header, at: 0)
            try temporary.dataSync()
        }
        try FileSystem.rename(preparedPath, path, changes: changes)
        try FileSystem.syncDirectory(directory, changes: changes)
        return (try PosixFile(path: path, flags: O_WRONLY, changes: changes), header.count)
    }

    /// Stops preparing the next segment (on close).
    func shutdown() { preparer.discard() }

    /// Deletes segments wholly at or before the durable snapshot, oldest first, never the one
    /// being written. Stops at the first segment that still holds a later entry: releasing only
    /// a prefix keeps replay's rule simple (see `LogState.append(_:allowingHole:)`).
    private func releaseSegments() throws {
        var released = 0
        while released < segments.count - 1, segments[released].maxEntryIndex <= snapshot.index {
            try FileSystem.unlink(segments[released].path, changes: changes)
            released += 1
        }
        guard released > 0 else { return }
        segments.removeFirst(released)
        segmentsReleased += released
        try FileSystem.syncDirectory(directory, changes: changes)
    }
}
