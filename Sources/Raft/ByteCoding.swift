/// Appends integers and byte strings in the compact form the message codec uses: unsigned
/// LEB128 varints (as in protobuf, which etcd's raft messages use) and length-prefixed bytes.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(reservingCapacity capacity: Int = 64) {
        bytes.reserveCapacity(capacity)
    }

    mutating func writeByte(_ value: UInt8) {
        bytes.append(value)
    }

    mutating func writeVarint(_ value: UInt64) {
        var remaining = value
        while remaining >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: remaining) | 0x80)
            remaining >>= 7
        }
        bytes.append(UInt8(remaining))
    }

    mutating func writeVarint(_ value: Int) {
        precondition(value >= 0, "negative length \(value)")
        writeVarint(UInt64(value))
    }

    mutating func writeBool(_ value: Bool) {
        bytes.append(value ? 1 : 0)
    }

    mutating func writeBytes(_ value: [UInt8]) {
        writeVarint(value.count)
        bytes.append(contentsOf: value)
    }
}

/// Reads what `ByteWriter` wrote, throwing on anything malformed: bytes from the network are
/// untrusted, so a bad message must be an error, never a crash or a huge allocation.
struct ByteReader {
    private let bytes: [UInt8]
    private(set) var offset: Int = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    var remainingCount: Int { bytes.count - offset }

    mutating func readByte() throws(MessageDecodingError) -> UInt8 {
        guard offset < bytes.count else { throw .truncated(offset: offset) }
        defer { offset += 1 }
        return bytes[offset]
    }

    mutating func readVarint() throws(MessageDecodingError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let byte = try readByte()
            // The tenth byte may carry only the top bit of a 64-bit value.
            if shift == 63 && byte > 1 { throw .malformedVarint(offset: start) }
            result |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
            if shift > 63 { throw .malformedVarint(offset: start) }
        }
    }

    /// A count or length, bounded by what is left so that a forged length cannot make us allocate.
    mutating func readLength(minimumElementBytes: Int = 1) throws(MessageDecodingError) -> Int {
        let start = offset
        let value = try readVarint()
        guard value <= UInt64(remainingCount / max(minimumElementBytes, 1)) else {
            throw .truncated(offset: start)
        }
        return Int(value)
    }

    mutating func readBool() throws(MessageDecodingError) -> Bool {
        let start = offset
        switch try readByte() {
        case 0: return false
        case 1: return true
        case let other: throw .invalidValue(field: "bool", value: UInt64(other), offset: start)
        }
    }

    mutating func readBytes() throws(MessageDecodingError) -> [UInt8] {
        let count = try readLength()
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }
}
