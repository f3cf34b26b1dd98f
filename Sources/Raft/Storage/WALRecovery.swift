#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where recovery cut a torn tail off the last segment.
public struct WALTornTail: Sendable, Hashable {
    /// The segment that was repaired.
    public var path: String
    /// Where good data ended and the file now ends (the bytes after it are zeroed).
    public var offset: Int
}

/// Opening an existing log: read every segment in order, replay its records into a `LogState`,
/// repair a torn tail, and leave the last segment ready for appending.
enum WALRecovery {
    struct Outcome {
        var writer: WALWriter
        var state: LogState
        var tornTail: WALTornTail?
    }

    static func recover(directory: String, segmentBytes: Int, changes: UnsyncedChanges?) throws -> Outcome {
        var sequences: [UInt64] = []
        for name in try FileSystem.list(directory) {
            if name.hasSuffix(WALSegmentName.temporarySuffix) {
                // A rollover that died before its rename: never part of the log.
                try FileSystem.unlink(directory + "/" + name, changes: changes)
            } else if let sequence = WALSegmentName.sequence(fromFileName: name) {
                sequences.append(sequence)
            }
        }
        sequences.sort()
        guard let lastSequence = sequences.last else {
            try WALSegmentPreparer.prepare(directory: directory, sequence: 1, segmentBytes: segmentBytes, changes: changes)
            let (file, end) = try WALWriter.createSegment(
                directory: directory, sequence: 1,
                preparedPath: WALSegmentPreparer.temporaryPath(directory: directory, sequence: 1),
                hardState: HardState(), snapshot: SnapshotMetadata(), changes: changes)
            let writer = WALWriter(
                directory: directory, segmentBytes: segmentBytes, changes: changes, current: file, offset: end, headerEnd: end,
                segments: [WALSegmentInfo(sequence: 1, path: file.path, maxEntryIndex: 0)],
                hardState: HardState(), snapshot: SnapshotMetadata())
            return Outcome(writer: writer, state: LogState(), tornTail: nil)
        }
        for (earlier, later) in zip(sequences, sequences.dropFirst()) where later != earlier + 1 {
            // Release only ever removes a prefix, so a hole in the middle means a lost file.
            throw StorageError.corruptRecord(
                path: directory + "/" + WALSegmentName.fileName(sequence: earlier + 1), offset: 0,
                reason: "segment is missing between \(WALSegmentName.fileName(sequence: earlier)) and \(WALSegmentName.fileName(sequence: later))")
        }

        var state = LogState()
        var segments: [WALSegmentInfo] = []
        var sawEntry = false
        var holeOpener: (path: String, offset: Int, index: UInt64)?
        var last: ScannedSegment?
        for sequence in sequences {
            let path = directory + "/" + WALSegmentName.fileName(sequence: sequence)
            let scanned = try WALSegmentScanner.scan(path: path, sequence: sequence, isLast: sequence == lastSequence)
            var maxEntryIndex: UInt64 = 0
            for (offset, record) in scanned.records {
                switch record {
                case .entry(let entry):
                    let expected = state.lastIndex + 1
                    switch state.append(entry, allowingHole: !sawEntry) {
                    case .appended, .stale:
                        break
                    case .gap:
                        throw StorageError.logGap(path: path, offset: offset, expectedIndex: expected, foundIndex: entry.index)
                    }
                    if !sawEntry && state.hasHole {
                        holeOpener = (path, offset, entry.index)
                    }
                    sawEntry = true
                    maxEntryIndex = max(maxEntryIndex, entry.index)
                case .hardState(let hardState):
                    state.hardState = hardState
                case .snapshot(let metadata):
                    state.apply(snapshot: metadata)
                }
            }
            segments.append(WALSegmentInfo(sequence: sequence, path: path, maxEntryIndex: maxEntryIndex))
            last = scanned
        }
        if state.hasHole, let opener = holeOpener {
            throw StorageError.logGap(
                path: opener.path, offset: opener.offset, expectedIndex: state.snapshot.index + 1, foundIndex: opener.index)
        }

        guard let last else { throw StorageError.invalidArgument("no segment scanned") }
        let file = try PosixFile(path: last.path, flags: O_WRONLY, changes: changes)
        var tornTail: WALTornTail?
        if last.hasTornTail {
            // Zero the torn bytes in place, so a later, shorter record cannot leave pieces of
            // them behind it that would parse as records.
            try file.writeZeros(from: last.validEnd, count: last.dataEnd - last.validEnd)
            tornTail = WALTornTail(path: last.path, offset: last.validEnd)
        }
        let size = try file.size()
        if size < segmentBytes { try file.writeZeros(from: size, count: segmentBytes - size) }
        try file.dataSync()
        let headerEnd = last.records.first { record in
            if case .entry = record.record { return true } else { return false }
        }?.offset ?? last.validEnd
        let writer = WALWriter(
            directory: directory, segmentBytes: segmentBytes, changes: changes, current: file, offset: last.validEnd,
            headerEnd: min(headerEnd, last.validEnd), segments: segments, hardState: state.hardState,
            snapshot: state.snapshot)
        return Outcome(writer: writer, state: state, tornTail: tornTail)
    }
}
