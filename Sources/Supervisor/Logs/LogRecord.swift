/// The on-disk shape of an instance's log files: records, each a fixed-width text header and
/// then the bytes the service wrote, exactly as they came out of its pipe:
///
///     \u{1E}2026-11-26T21:26:00.123456789Z stdout 0000065536\n<65536 bytes of output>
///
/// The header goes first and the data is spliced from the pipe straight behind it, so what leaves
/// the pipe is what lands in the file even if the supervisor is killed in between: a record cut
/// short by a kill is repaired on reopening (its length is set to the bytes present; a header
/// without data is dropped), and no byte is lost or written twice. A record holds whatever one
/// read found: lines are cut apart, and put together across records, when reading. Records
/// never straddle files; lines may.
struct LogRecordHeader: Sendable, Hashable {
    /// Header size in bytes: RS, 30-character timestamp, space, 6-character stream, space,
    /// 10-digit length, newline.
    static let size = 50
    /// The record separator that starts every header (ASCII RS).
    static let marker = UInt8(0x1E)
    /// The largest length the header can hold.
    static let maxLength = 9_999_999_999

    /// Unix epoch nanoseconds when the data was taken from the pipe.
    var timestampNanoseconds: Int64
    var stream: LogStream
    /// Bytes of data that follow.
    var length: Int

    /// The header's bytes.
    var bytes: [UInt8] {
        var out: [UInt8] = [Self.marker]
        out.reserveCapacity(Self.size)
        out += LogTimestamp.bytes(timestampNanoseconds)
        out.append(UInt8(ascii: " "))
        out += Array(stream.rawValue.utf8)
        out.append(UInt8(ascii: " "))
        out += Self.lengthDigits(length)
        out.append(UInt8(ascii: "\n"))
        return out
    }

    /// The 10 length digits (the part rewritten when a torn record is repaired).
    static func lengthDigits(_ length: Int) -> [UInt8] {
        var digits = [UInt8](repeating: UInt8(ascii: "0"), count: 10)
        var value = length
        for i in stride(from: 9, through: 0, by: -1) {
            digits[i] = UInt8(ascii: "0") + UInt8(value % 10)
            value /= 10
        }
        return digits
    }

    /// Offset of the length digits within the header.
    static let lengthOffset = 39

    /// Parses a header from exactly `size` bytes; nil when they are not one.
    init?<C: Collection<UInt8>>(parsing bytes: C) where C.Index == Int {
        guard bytes.count == Self.size else { return nil }
        let base = bytes.startIndex
        guard bytes[base] == Self.marker, bytes[base + 31] == UInt8(ascii: " "), bytes[base + 38] == UInt8(ascii: " "),
            bytes[base + 49] == UInt8(ascii: "\n"),
            let timestamp = LogTimestamp.parse(bytes[(base + 1)..<(base + 31)]),
            let stream = LogStream(rawValue: String(decoding: bytes[(base + 32)..<(base + 38)], as: UTF8.self))
        else { return nil }
        var length = 0
        for i in (base + 39)..<(base + 49) {
            let byte = bytes[i]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            length = length * 10 + Int(byte - UInt8(ascii: "0"))
        }
        self.init(timestampNanoseconds: timestamp, stream: stream, length: length)
    }

    init(timestampNanoseconds: Int64, stream: LogStream, length: Int) {
        self.timestampNanoseconds = timestampNanoseconds
        self.stream = stream
        self.length = length
    }
}

/// The name of log file number `sequence` (zero-padded so that names sort as numbers do).
enum LogFileName {
    static func name(_ sequence: UInt64) -> String {
        let digits = String(sequence)
        return String(repeating: "0", count: max(0, 10 - digits.count)) + digits + ".log"
    }

    static func sequence(of name: String) -> UInt64? {
        guard name.hasSuffix(".log") else { return nil }
        return UInt64(name.dropLast(4))
    }
}
