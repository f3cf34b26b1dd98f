/// A domain name in wire form (RFC 1035 §3.1): length-prefixed labels ending in the root's zero,
/// uncompressed. Equality and hashing ignore ASCII case (RFC 4343), so a question written as the
/// client wrote it (DNS 0x20 mixes case on purpose) finds the zone's lowercase key without first
/// being copied to lowercase.
struct DNSWireName: Hashable, Sendable {
    var bytes: [UInt8]

    init(bytes: [UInt8]) {
        self.bytes = bytes
    }

    /// Wire form of `labels` followed by `suffix` (itself a wire name ending in zero), lowercased.
    init(labels: [String], suffix: [UInt8]) {
        var bytes: [UInt8] = []
        for label in labels {
            bytes.append(UInt8(truncatingIfNeeded: label.utf8.count))
            bytes.append(contentsOf: label.utf8.map(Self.lowercase))
        }
        bytes.append(contentsOf: suffix)
        self.bytes = bytes
    }

    /// ASCII-only case folding (RFC 4343 §3). Length octets are at most 63 (< "A"), so folding
    /// every byte of a wire name is safe.
    @inline(__always)
    static func lowercase(_ byte: UInt8) -> UInt8 {
        byte &- 0x41 < 26 ? byte | 0x20 : byte
    }

    static func == (lhs: DNSWireName, rhs: DNSWireName) -> Bool {
        guard lhs.bytes.count == rhs.bytes.count else { return false }
        for index in lhs.bytes.indices where lowercase(lhs.bytes[index]) != lowercase(rhs.bytes[index]) {
            return false
        }
        return true
    }

    func hash(into hasher: inout Hasher) {
        // FNV-1a over the folded bytes, fed to the (seeded) Hasher once: cheaper than a combine
        // per byte, and still keyed by Hasher's per-process seed against collision floods.
        var fnv: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            fnv = (fnv ^ UInt64(Self.lowercase(byte))) &* 0x0000_0100_0000_01B3
        }
        hasher.combine(fnv)
    }

    /// The offset at which `suffix` (a lowercase wire name) starts in this name, on a label
    /// boundary and ignoring case; nil when this name does not end with it.
    func offset(ofSuffix suffix: [UInt8]) -> Int? {
        let start = bytes.count - suffix.count
        guard start >= 0 else { return nil }
        // Walk the labels: a byte-wise match that starts inside a label would be a false positive
        // ("xflotilla." is not under "flotilla.").
        var position = 0
        while position < start {
            position += 1 + Int(bytes[position])
        }
        guard position == start else { return nil }
        for index in 0..<suffix.count where Self.lowercase(bytes[start + index]) != suffix[index] {
            return nil
        }
        return start
    }

    /// The labels before `offset`, as text (for the names the zone makes up, such as `.addr.`).
    func labels(before offset: Int) -> [ArraySlice<UInt8>] {
        var labels: [ArraySlice<UInt8>] = []
        var position = 0
        while position < offset {
            let length = Int(bytes[position])
            labels.append(bytes[(position + 1)..<(position + 1 + length)])
            position += 1 + length
        }
        return labels
    }
}
