/// Little-endian encoding of the fixed-width fields in WAL records and snapshot files.
/// Little-endian because every machine we run on is, so encoding is a copy.
struct LittleEndianWriter {
    var bytes: [UInt8]

    init(reservingCapacity capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    mutating func append(_ value: UInt8) { bytes.append(value) }

    mutating func append(_ value: UInt32) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ value: UInt64) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func append(_ value: [UInt8]) { bytes.append(contentsOf: value) }
}

/// Reads what `LittleEndianWriter` wrote, failing (never trapping) on short or malformed input, since its
/// input comes from disk.
struct LittleEndianReader {
    struct Truncated: Error {}

    private let bytes: ArraySlice<UInt8>
    private(set) var position: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        position = bytes.startIndex
    }

    var remaining: Int { bytes.endIndex - position }

    mutating func readUInt8() throws(Truncated) -> UInt8 {
        guard remaining >= 1 else { throw Truncated() }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func readUInt32() throws(Truncated) -> UInt32 {
        guard remaining >= 4 else { throw Truncated() }
        var value: UInt32 = 0
        for shift in 0..<4 { value |= UInt32(bytes[position + shift]) << (8 * shift) }
        position += 4
        return value
    }

    mutating func readUInt64() throws(Truncated) -> UInt64 {
        guard remaining >= 8 else { throw Truncated() }
        var value: UInt64 = 0
        for shift in 0..<8 { value |= UInt64(bytes[position + shift]) << (8 * shift) }
        position += 8
        return value
    }

    mutating func readBytes(_ count: Int) throws(Truncated) -> [UInt8] {
        guard count >= 0, remaining >= count else { throw Truncated() }
        defer { position += count }
        return Array(bytes[position..<(position + count)])
    }

    mutating func readRest() -> [UInt8] {
        defer { position = bytes.endIndex }
        return Array(bytes[position...])
    }
}

extension ConfState {
    /// Voters then learners, each as a count and sorted ids, so that equal states encode equally.
    func appendStorageEncoding(to writer: inout LittleEndianWriter) {
        for members in [voters, learners] {
            writer.append(UInt32(members.count))
            for id in members.sorted() { writer.append(id) }
        }
    }

    static func decodeStorageEncoding(from reader: inout LittleEndianReader) throws(LittleEndianReader.Truncated) -> ConfState {
        var sets: [Set<NodeID>] = []
        for _ in 0..<2 {
            let count = Int(try reader.readUInt32())
            // A count larger than what is left cannot be honest; refuse before allocating.
            guard count <= reader.remaining / 8 else { throw LittleEndianReader.Truncated() }
            var members = Set<NodeID>(minimumCapacity: count)
            for _ in 0..<count { members.insert(try reader.readUInt64()) }
            sets.append(members)
        }
        return ConfState(voters: sets[0], learners: sets[1])
    }
}

extension SnapshotMetadata {
    func appendStorageEncoding(to writer: inout LittleEndianWriter) {
        writer.append(index)
        writer.append(term)
        confState.appendStorageEncoding(to: &writer)
    }

    static func decodeStorageEncoding(from reader: inout LittleEndianReader) throws(LittleEndianReader.Truncated) -> SnapshotMetadata {
        let index = try reader.readUInt64()
        let term = try reader.readUInt64()
        let confState = try ConfState.decodeStorageEncoding(from: &reader)
        return SnapshotMetadata(index: index, term: term, confState: confState)
    }
}
