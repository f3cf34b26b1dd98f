// An instance's or a node's address, parsed once when the catalog is built so that the query path
// copies 4 or 16 bytes instead of formatting or parsing text.

/// An IPv4 or IPv6 address, as answered in A (RFC 1035 §3.4.1) or AAAA (RFC 3596 §2.2) records.
public enum DNSAddress: Hashable, Sendable, CustomStringConvertible {
    /// An IPv4 address in network order, most significant byte first.
    case ipv4(UInt32)
    /// An IPv6 address: the high and the low 64 bits, in network order.
    case ipv6(high: UInt64, low: UInt64)

    /// Parses dotted-quad IPv4 (`10.0.0.1`) or RFC 4291 §2.2 IPv6 text (`fd00::1`, `::ffff:1.2.3.4`).
    /// Returns nil for anything else (no zone indexes, no leading zeros in IPv4, no brackets).
    public init?(_ text: String) {
        if let v4 = Self.parseIPv4(Substring(text)) {
            self = .ipv4(v4)
        } else if let (high, low) = Self.parseIPv6(text) {
            self = .ipv6(high: high, low: low)
        } else {
            return nil
        }
    }

    /// 0.0.0.0 or ::, which a socket binds to mean every address and nobody can send to.
    public var isUnspecified: Bool {
        switch self {
        case .ipv4(let value): value == 0
        case .ipv6(let high, let low): high == 0 && low == 0
        }
    }

    /// Text form: dotted quad, or IPv6 with the longest run of zero groups shortened (RFC 5952).
    public var description: String {
        switch self {
        case .ipv4(let value):
            return "\(value >> 24).\((value >> 16) & 0xFF).\((value >> 8) & 0xFF).\(value & 0xFF)"
        case .ipv6(let high, let low):
            let groups: [UInt16] = (0..<8).map { index in
                let word = index < 4 ? high : low
                return UInt16(truncatingIfNeeded: word >> (UInt64(3 - index % 4) * 16))
            }
            // The longest run of two or more zero groups becomes "::" (RFC 5952 §4.2).
            var bestStart = -1
            var bestLength = 1
            var index = 0
            while index < 8 {
                if groups[index] == 0 {
                    var end = index
                    while end < 8 && groups[end] == 0 { end += 1 }
                    if end - index > bestLength {
                        bestStart = index
                        bestLength = end - index
                    }
                    index = end
                } else {
                    index += 1
                }
            }
            func hex(_ range: Range<Int>) -> String {
                groups[range].map { String($0, radix: 16) }.joined(separator: ":")
            }
            if bestStart < 0 { return hex(0..<8) }
            return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
        }
    }

    /// 4 for IPv4, 16 for IPv6: the RDATA length of the record that carries it.
    var rdataBytes: Int {
        switch self {
        case .ipv4: return 4
        case .ipv6: return 16
        }
    }

    private static func parseIPv4(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.utf8.count), part.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
                part.utf8.count == 1 || part.utf8.first != 0x30,
                let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    private static func parseIPv6(_ text: String) -> (UInt64, UInt64)? {
        // Split at "::" (at most once), parse each side's groups, fill the gap with zeros.
        let utf8 = Array(text.utf8)
        guard utf8.count >= 2, utf8.count <= 45 else { return nil }
        var doubleColon: Int? = nil
        var index = 0
        while index + 1 < utf8.count {
            if utf8[index] == 0x3A && utf8[index + 1] == 0x3A {
                guard doubleColon == nil else { return nil }
                doubleColon = index
                index += 2
            } else {
                index += 1
            }
        }
        func groups(_ part: ArraySlice<UInt8>, allowIPv4Tail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            let pieces = part.split(separator: 0x3A, omittingEmptySubsequences: false)
            var result: [UInt16] = []
            for (position, piece) in pieces.enumerated() {
                if allowIPv4Tail, position == pieces.count - 1, piece.contains(0x2E) {
                    guard let v4 = parseIPv4(Substring(decoding: piece, as: UTF8.self)) else { return nil }
                    result.append(UInt16(v4 >> 16))
                    result.append(UInt16(v4 & 0xFFFF))
                    continue
                }
                guard (1...4).contains(piece.count),
                    let group = UInt16(String(decoding: piece, as: UTF8.self), radix: 16)
                else { return nil }
                result.append(group)
            }
            return result
        }
        var all: [UInt16]
        if let doubleColon {
            guard let head = groups(utf8[..<doubleColon], allowIPv4Tail: false),
                let tail = groups(utf8[(doubleColon + 2)...], allowIPv4Tail: true),
                head.count + tail.count <= 7
            else { return nil }
            all = head + Array(repeating: 0, count: 8 - head.count - tail.count) + tail
        } else {
            guard let only = groups(utf8[...], allowIPv4Tail: true), only.count == 8 else { return nil }
            all = only
        }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for group in all[0..<4] { high = high << 16 | UInt64(group) }
        for group in all[4..<8] { low = low << 16 | UInt64(group) }
        return (high, low)
    }
}
