import Glibc

/// Where a reader of an instance's log is: a record boundary in a file, and the start of a line
/// of each stream that is not complete yet. `LogReader.read(after:)` returns an updated one.
public struct LogCursor: Sendable, Hashable {
    /// The log file's number.
    public var sequence: UInt64
    /// The byte offset of the next record in it.
    public var offset: Int64
    /// Per stream, the bytes of a line begun but not ended, and when its first part came.
    var pending: [LogStream: PendingLine] = [:]

    struct PendingLine: Sendable, Hashable {
        var timestampNanoseconds: Int64
        var bytes: [UInt8]
    }
}

/// Reads an instance's log files (see `LogRecordHeader`): lines put back together per stream,
/// in the order their ends were captured, each with the time its first part was captured.
/// Safe to use while the supervisor writes: a record whose data is not all there yet is left
/// for the next read.
public struct LogReader: Sendable {
    /// The instance's log directory.
    public let directory: String
    /// Longest line returned whole; a longer one is returned in pieces of this size, all but the
    /// last marked partial (journald's LineMax is 48 KiB).
    public var maxLineBytes = 48 * 1024

    /// A reader of `directory`.
    public init(directory: String) {
        self.directory = directory
    }

    /// Every line kept (complete ones, and each stream's unfinished last line marked partial).
    /// Once files were rotated away, each stream's first line may have begun in one of them: it
    /// is marked partial too.
    public func lines() throws(SystemCallError) -> [LogLine] {
        var (lines, cursor) = try read(after: nil)
        lines += finishPending(cursor)
        if let oldest = LogFileSet.sequences(in: directory).first, oldest > 1 { Self.markFirstLinesPartial(&lines) }
        return lines
    }

    /// Marks each stream's first line partial: it may have begun in a file no longer kept.
    private static func markFirstLinesPartial(_ lines: inout [LogLine]) {
        var seen: Set<LogStream> = []
        for index in lines.indices where seen.insert(lines[index].stream).inserted { lines[index].isPartial = true }
    }

    /// The last `count` lines (an unfinished last line of a stream counts, marked partial).
    public func tail(_ count: Int) throws(SystemCallError) -> [LogLine] {
        guard count > 0 else { return [] }
        return try lastLines(count, unfinished: true).lines
    }

    /// The last `count` lines and the cursor after them, reading back from the newest file only
    /// as far as they need (a follower starts there, not at the oldest file kept). `unfinished`:
    /// each stream's unfinished last line counts, marked partial (else it stays in the cursor).
    public func lastLines(_ count: Int, unfinished: Bool) throws(SystemCallError) -> (lines: [LogLine], cursor: LogCursor) {
        let sequences = LogFileSet.sequences(in: directory)
        guard !sequences.isEmpty else { return ([], try read(after: nil).1) }
        var back = 1
        var first = sequences.count - 1
        while true {
            var (lines, cursor) = try read(after: LogCursor(sequence: sequences[first], offset: 0))
            if unfinished { lines += finishPending(cursor) }
            // From a file that is not the oldest kept, each stream's first line may have begun
            // in the file before: a fragment. It may not be shown, nor be the start of a line
            // the cursor carries on (a stream with no line read yet).
            if first > 0 && !Self.windowIsWhole(lines, count: count, pending: unfinished ? [:] : cursor.pending) {
                // Back twice as far each time: each attempt reads its files again.
                first = max(0, sequences.count - 1 - back)
                back *= 2
                continue
            }
            // The oldest kept, once older ones were rotated away: no earlier file to read, so
            // such a line is shown marked partial.
            if first == 0 && sequences[0] > 1 { Self.markFirstLinesPartial(&lines) }
            return (Array(lines.suffix(count)), cursor)
        }
    }

    /// Whether the last `count` of `lines`, read from the start of a file that is not the oldest,
    /// hold no stream's first line (which may have begun before), and no stream carries an
    /// unfinished line without a line read before it.
    private static func windowIsWhole(_ lines: [LogLine], count: Int, pending: [LogStream: LogCursor.PendingLine]) -> Bool {
        var seen: Set<LogStream> = []
        for (index, line) in lines.enumerated() where seen.insert(line.stream).inserted {
            if index >= lines.count - count { return false }
        }
        return pending.allSatisfy { $0.value.bytes.isEmpty || seen.contains($0.key) }
    }

    /// Lines completed after `cursor` (nil: from the oldest file kept) and the cursor after them.
    /// A cursor whose file was rotated away continues from the oldest file kept.
    public func read(after cursor: LogCursor?) throws(SystemCallError) -> ([LogLine], LogCursor) {
        let sequences = LogFileSet.sequences(in: directory)
        guard let oldest = sequences.first, let newest = sequences.last else {
            return ([], cursor ?? LogCursor(sequence: 1, offset: 0))
        }
        var position = cursor ?? LogCursor(sequence: oldest, offset: 0)
        if position.sequence < oldest {
            position.sequence = oldest
            position.offset = 0
        }
        var lines: [LogLine] = []
        while true {
            let path = directory + "/" + LogFileName.name(position.sequence)
            // Only what follows the cursor is read: a follower reads each byte once.
            let base = Int(position.offset)
            let bytes: [UInt8]
            do {
                bytes = try FileSystem.read(path, from: base)
            } catch where error.errno == ENOENT {
                bytes = []
            }
            var offset = 0
            while offset + LogRecordHeader.size <= bytes.count {
                guard let header = LogRecordHeader(parsing: bytes[offset..<(offset + LogRecordHeader.size)]) else { break }
                let dataStart = offset + LogRecordHeader.size
                guard dataStart + header.length <= bytes.count else { break }
                assemble(header, bytes[dataStart..<(dataStart + header.length)], into: &lines, pending: &position.pending)
                offset = dataStart + header.length
            }
            position.offset = Int64(base + offset)
            guard position.sequence < newest, offset >= bytes.count else { break }
            position.sequence += 1
            position.offset = 0
        }
        return (lines, position)
    }

    /// Each stream's unfinished line, as partial lines.
    public func finishPending(_ cursor: LogCursor) -> [LogLine] {
        cursor.pending.filter { !$0.value.bytes.isEmpty }.sorted { $0.value.timestampNanoseconds < $1.value.timestampNanoseconds }
            .map { LogLine(timestampNanoseconds: $0.value.timestampNanoseconds, stream: $0.key,
                           text: String(decoding: $0.value.bytes, as: UTF8.self), isPartial: true) }
    }

    private func assemble(_ header: LogRecordHeader, _ data: ArraySlice<UInt8>, into lines: inout [LogLine],
                          pending: inout [LogStream: LogCursor.PendingLine])
    {
        var start = data.startIndex
        var carried = pending[header.stream]
        for index in data.indices where data[index] == UInt8(ascii: "\n") {
            var bytes = carried?.bytes ?? []
            bytes += data[start..<index]
            lines.append(LogLine(timestampNanoseconds: carried?.timestampNanoseconds ?? header.timestampNanoseconds,
                                 stream: header.stream, text: String(decoding: bytes, as: UTF8.self)))
            carried = nil
            start = index + 1
        }
        if start < data.endIndex {
            var line = carried ?? LogCursor.PendingLine(timestampNanoseconds: header.timestampNanoseconds, bytes: [])
            line.bytes += data[start..<data.endIndex]
            while line.bytes.count >= maxLineBytes {
                lines.append(LogLine(timestampNanoseconds: line.timestampNanoseconds, stream: header.stream,
                                     text: String(decoding: line.bytes.prefix(maxLineBytes), as: UTF8.self), isPartial: true))
                line.bytes.removeFirst(maxLineBytes)
            }
            carried = line
        }
        pending[header.stream] = carried
    }
}
