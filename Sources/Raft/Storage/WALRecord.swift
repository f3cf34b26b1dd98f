/// One record of the write-ahead log, as the driver hands it over and replay hands it back.
public enum WALRecord: Sendable, Hashable {
    /// A log entry. A later entry at an index replaces that index and everything after it
    /// (a follower's log is truncated by a conflicting leader, Raft paper §5.3).
    case entry(Entry)
    /// The hard state (term, vote, commit), kept in the WAL rather than a file of its own: it
    /// changes in the same Ready as the entries, so one write and one fdatasync make both durable
    /// and ordered, where a separate file would cost a write, an fsync, a rename and a directory
    /// fsync on every vote and commit advance (etcd's WAL makes the same choice).
    case hardState(HardState)
    /// A snapshot at this point is durable in the snapshot store: entries up to its index are no
    /// longer needed, and segments wholly before it may be released.
    case snapshot(SnapshotMetadata)
}

/// The on-disk framing of a record, 8-byte aligned:
///
///     offset 0  UInt32 LE  payload length (kind byte + body), never 0
///     offset 4  UInt32 LE  CRC-32C of the 4 length bytes followed by the payload
///     offset 8  UInt8      kind
///     offset 9  body, then zero padding to a multiple of 8
///
/// The checksum covers the length so that a torn or flipped length cannot pass as a record of
/// another size. Zero is never a valid length, so zero-filled space ahead of the data reads as "no record",
/// and alignment lets recovery probe for surviving records after a bad one at 8-byte steps.
enum WALFrame {
    static let headerBytes = 8
    static let alignmentBytes = 8
    /// Anything longer is treated as a damaged length field, not a record.
    static let maxPayloadBytes = 1 << 28

    enum Kind: UInt8 {
        case segmentHeader = 1
        case entry = 2
        case hardState = 3
        case snapshot = 4
    }

    /// Segment format version, in each segment's first record.
    static let formatVersion: UInt32 = 1

    /// What a decoded record holds; the segment header is internal to the log.
    enum Decoded: Equatable {
        case segmentHeader(version: UInt32, sequence: UInt64)
        case record(WALRecord)
    }

    struct DecodeFailure: Error { var reason: String }

    /// Appends the framed record to `bytes`.
    static func append(_ record: WALRecord, to bytes: inout [UInt8]) {
        switch record {
        case .entry(let entry):
            append(kind: .entry, to: &bytes, bodyBytes: 17 + entry.data.count) { writer in
                writer.append(entry.term)
                writer.append(entry.index)
                writer.append(entry.kind.rawValue)
                writer.append(entry.data)
            }
        case .hardState(let state):
            append(kind: .hardState, to: &bytes, bodyBytes: 24) { writer in
                writer.append(state.term)
                writer.append(state.vote)
                writer.append(state.commit)
            }
        case .snapshot(let metadata):
            append(kind: .snapshot, to: &bytes, bodyBytes: 64) { writer in
                metadata.appendStorageEncoding(to: &writer)
            }
        }
    }

    /// Appends a segment's first record.
    static func appendSegmentHeader(sequence: UInt64, to bytes: inout [UInt8]) {
        append(kind: .segmentHeader, to: &bytes, bodyBytes: 12) { writer in
            writer.append(formatVersion)
            writer.append(sequence)
        }
    }

    /// The framed size of `record`, without encoding it.
    static func framedSize(payloadBytes: Int) -> Int {
        let raw = headerBytes + payloadBytes
        return (raw + alignmentBytes - 1) / alignmentBytes * alignmentBytes
    }

    private static func append(
        kind: Kind, to bytes: inout [UInt8], bodyBytes: Int, body: (inout LittleEndianWriter) -> Void
    ) {
        var writer = LittleEndianWriter()
        swap(&writer.bytes, &bytes)
        let start = writer.bytes.count
        writer.bytes.reserveCapacity(start + framedSize(payloadBytes: 1 + bodyBytes))
        writer.append(UInt32(0))  // length, patched below
        writer.append(UInt32(0))  // checksum, patched below
        writer.append(kind.rawValue)
        body(&writer)
        let payloadBytes = writer.bytes.count - start - headerBytes
        let padding = framedSize(payloadBytes: payloadBytes) - headerBytes - payloadBytes
        writer.bytes.append(contentsOf: repeatElement(0, count: padding))
        swap(&writer.bytes, &bytes)
        let length = UInt32(payloadBytes)
        bytes.withUnsafeMutableBytes { buffer in
            buffer.storeBytes(of: length.littleEndian, toByteOffset: start, as: UInt32.self)
            var crc = CRC32C()
            crc.update(UnsafeRawBufferPointer(rebasing: buffer[start..<(start + 4)]))
            crc.update(UnsafeRawBufferPointer(
                rebasing: buffer[(start + headerBytes)..<(start + headerBytes + payloadBytes)]))
            buffer.storeBytes(of: crc.value.littleEndian, toByteOffset: start + 4, as: UInt32.self)
        }
    }

    /// The outcome of looking at the bytes at one offset of a segment.
    enum Probe {
        /// A record whose length and checksum hold; `next` is the offset after it.
        case valid(payload: Range<Int>, next: Int)
        /// A zero length: zero-filled space ahead of the data, or a record never written.
        case empty
        /// A length that runs past the data or past `maxPayloadBytes`.
        case truncated(length: Int)
        /// A checksum that does not match.
        case checksumMismatch(stored: UInt32, computed: UInt32)
    }

    /// Looks at the record framed at `offset` of `buffer`, checking length and checksum only.
    static func probe(_ buffer: UnsafeRawBufferPointer, at offset: Int) -> Probe {
        guard buffer.count - offset >= headerBytes else {
            return buffer[offset...].allSatisfy({ $0 == 0 }) ? .empty : .truncated(length: -1)
        }
        let length = Int(UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
        if length == 0 { return .empty }
        guard length <= maxPayloadBytes, length <= buffer.count - offset - headerBytes else {
            return .truncated(length: length)
        }
        let stored = UInt32(littleEndian: buffer.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self))
        var crc = CRC32C()
        crc.update(UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + 4)]))
        let payload = (offset + headerBytes)..<(offset + headerBytes + length)
        crc.update(UnsafeRawBufferPointer(rebasing: buffer[payload]))
        guard crc.value == stored else { return .checksumMismatch(stored: stored, computed: crc.value) }
        return .valid(payload: payload, next: min(offset + framedSize(payloadBytes: length), buffer.count))
    }

    /// Decodes a payload whose checksum held. A failure here is corruption, never a torn write.
    static func decode(_ payload: ArraySlice<UInt8>) throws(DecodeFailure) -> Decoded {
        var reader = LittleEndianReader(payload)
        do {
            let rawKind = try reader.readUInt8()
            guard let kind = Kind(rawValue: rawKind) else {
                throw DecodeFailure(reason: "unknown record kind \(rawKind)")
            }
            switch kind {
            case .segmentHeader:
                let version = try reader.readUInt32()
                let sequence = try reader.readUInt64()
                return .segmentHeader(version: version, sequence: sequence)
            case .entry:
                let term = try reader.readUInt64()
                let index = try reader.readUInt64()
                let rawEntryKind = try reader.readUInt8()
                guard let entryKind = EntryKind(rawValue: rawEntryKind) else {
                    throw DecodeFailure(reason: "unknown entry kind \(rawEntryKind)")
                }
                return .record(.entry(Entry(term: term, index: index, kind: entryKind, data: reader.readRest())))
            case .hardState:
                let state = HardState(
                    term: try reader.readUInt64(), vote: try reader.readUInt64(), commit: try reader.readUInt64())
                return .record(.hardState(state))
            case .snapshot:
                return .record(.snapshot(try SnapshotMetadata.decodeStorageEncoding(from: &reader)))
            }
        } catch let failure as DecodeFailure {
            throw failure
        } catch {
            throw DecodeFailure(reason: "record body shorter than its kind requires")
        }
    }
}
