#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Segment files are named by a 16-digit hexadecimal sequence number, so that a directory listing
/// sorts in log order and release removes a prefix of that order.
enum WALSegmentName {
    static let suffix = ".wal"
    static let temporarySuffix = ".wal.tmp"

    static func fileName(sequence: UInt64) -> String {
        let digits = String(sequence, radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits + suffix
    }

    static func sequence(fromFileName name: String) -> UInt64? {
        guard name.hasSuffix(suffix), name.count == 16 + suffix.count else { return nil }
        return UInt64(name.prefix(16), radix: 16)
    }
}

/// What reading one segment found.
struct ScannedSegment {
    var path: String
    var sequence: UInt64
    /// Records after the segment header, with their byte offsets.
    var records: [(offset: Int, record: WALRecord)]
    /// The offset just after the last good record: where appending resumes.
    var validEnd: Int
    /// True when bytes after `validEnd` are not all zero: a torn write that must be cut off
    /// before appending (else a later, shorter record could leave old bytes behind it that
    /// parse as records).
    var hasTornTail: Bool
    /// The offset after the last non-zero byte: where a torn tail ends.
    var dataEnd: Int
}

/// Reads a segment and decides where its good data ends.
///
/// The rule (DESIGN.md §1): a bad record is a torn tail, repaired by truncation, only if it is in
/// the last segment and no good record follows it. A write that was never acknowledged may be cut
/// anywhere when the machine dies, but nothing durable ever follows it. Anything else, including
/// a zeroed length with good records after it, or any bad byte in an earlier segment (each
/// segment is cut to its exact length when the log rolls over), is corruption and refuses to open.
enum WALSegmentScanner {
    static func scan(path: String, sequence: UInt64, isLast: Bool) throws -> ScannedSegment {
        try scan(bytes: try PosixFile(path: path, flags: O_RDONLY).readAll(), path: path, sequence: sequence, isLast: isLast)
    }

    /// Scans a segment's bytes already in memory (`path` only names it in errors).
    static func scan(bytes: [UInt8], path: String, sequence: UInt64, isLast: Bool) throws -> ScannedSegment {
        try bytes.withUnsafeBytes { buffer in
            try scan(buffer, bytes: bytes, path: path, sequence: sequence, isLast: isLast)
        }
    }

    private static func scan(
        _ buffer: UnsafeRawBufferPointer, bytes: [UInt8], path: String, sequence: UInt64, isLast: Bool
    ) throws -> ScannedSegment {
        var records: [(offset: Int, record: WALRecord)] = []
        var offset = 0
        var firstFailure: WALFrame.Probe?
        while offset < buffer.count {
            let probe = WALFrame.probe(buffer, at: offset)
            guard case .valid(let payload, let next) = probe else {
                firstFailure = probe
                break
            }
            let decoded: WALFrame.Decoded
            do {
                decoded = try WALFrame.decode(bytes[payload])
            } catch {
                throw StorageError.corruptRecord(path: path, offset: offset, reason: error.reason)
            }
            switch decoded {
            case .segmentHeader(let version, let headerSequence):
                guard offset == 0 else {
                    throw StorageError.corruptRecord(path: path, offset: offset, reason: "segment header inside the segment")
                }
                guard version == WALFrame.formatVersion else {
                    throw StorageError.corruptRecord(
                        path: path, offset: offset, reason: "unsupported segment format version \(version)")
                }
                guard headerSequence == sequence else {
                    throw StorageError.corruptRecord(
                        path: path, offset: offset,
                        reason: "segment header says sequence \(headerSequence), the file name \(sequence)")
                }
            case .record(let record):
                guard offset > 0 else {
                    throw StorageError.corruptRecord(path: path, offset: 0, reason: "segment does not start with a header")
                }
                records.append((offset, record))
            }
            offset = next
        }
        guard let failure = firstFailure else {
            return ScannedSegment(
                path: path, sequence: sequence, records: records, validEnd: offset, hasTornTail: false, dataEnd: offset)
        }
        // Segments are created complete (temporary name, header, fdatasync, rename), so a named
        // segment without a good header was damaged after the fact.
        if offset == 0 {
            throw StorageError.corruptRecord(path: path, offset: 0, reason: describe(failure) + " in the segment header")
        }
        if let survivor = firstGoodRecord(in: buffer, after: offset) {
            throw StorageError.corruptRecord(
                path: path, offset: offset,
                reason: describe(failure) + ", and a good record follows at byte offset \(survivor), so this is not a torn tail")
        }
        guard isLast else {
            throw StorageError.corruptRecord(
                path: path, offset: offset,
                reason: describe(failure) + " before the end of a segment that is not the last (segments are cut to length when the log rolls over)")
        }
        let dataEnd = endOfNonZeroData(buffer, notBefore: offset)
        return ScannedSegment(
            path: path, sequence: sequence, records: records, validEnd: offset, hasTornTail: dataEnd > offset, dataEnd: dataEnd)
    }

    /// The first offset after `offset`, at record alignment, where a record passes its length and
    /// checksum checks. Runs of zero pages (the zero-filled space ahead of the data, usually most of what follows
    /// the data) are skipped with memcmp rather than probed eight bytes at a time.
    static func firstGoodRecord(in buffer: UnsafeRawBufferPointer, after offset: Int) -> Int? {
        var candidate = offset + WALFrame.alignmentBytes
        while candidate + WALFrame.headerBytes <= buffer.count {
            if candidate % zeroPageBytes == 0, candidate + zeroPageBytes <= buffer.count,
                isZero(buffer, from: candidate, count: zeroPageBytes) {
                candidate += zeroPageBytes
                continue
            }
            if case .valid = WALFrame.probe(buffer, at: candidate) { return candidate }
            candidate += WALFrame.alignmentBytes
        }
        return nil
    }

    /// The offset just after the last non-zero byte at or after `start` (`start` if none),
    /// skipping zero pages from the end.
    static func endOfNonZeroData(_ buffer: UnsafeRawBufferPointer, notBefore start: Int) -> Int {
        var end = buffer.count
        while end > start {
            let pageStart = max(start, (end - 1) / zeroPageBytes * zeroPageBytes)
            if !isZero(buffer, from: pageStart, count: end - pageStart) {
                while end > pageStart && buffer[end - 1] == 0 { end -= 1 }
                return end
            }
            end = pageStart
        }
        return start
    }

    private static let zeroPageBytes = 4096
    private static let zeroPage = [UInt8](repeating: 0, count: zeroPageBytes)

    /// Whether `count` bytes from `start` are all zero, a page at a time through memcmp.
    static func isZero(_ buffer: UnsafeRawBufferPointer, from start: Int, count: Int) -> Bool {
        guard let base = buffer.baseAddress else { return true }
        var position = start
        let end = start + count
        return zeroPage.withUnsafeBytes { zeros in
            guard let zeroBase = zeros.baseAddress else { return false }
            while position < end {
                let chunk = min(zeroPageBytes, end - position)
                if memcmp(base + position, zeroBase, chunk) != 0 { return false }
                position += chunk
            }
            return true
        }
    }

    private static func describe(_ probe: WALFrame.Probe) -> String {
        switch probe {
        case .valid:
            return "good record"
        case .empty:
            return "zero length where a record should be"
        case .truncated(let length):
            return length < 0 ? "partial record header" : "record length \(length) runs past the end of the data"
        case .checksumMismatch(let stored, let computed):
            return "checksum mismatch (stored 0x\(String(stored, radix: 16)), computed 0x\(String(computed, radix: 16)))"
        }
    }
}
