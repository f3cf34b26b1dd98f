/// The operations linearized so far, as two bitsets: the completed ones, and those of unknown
/// outcome. The memo compares them differently (`SearchMemo`): a configuration with more
/// operations of unknown outcome still unplaced can do all that one with fewer can.
///
/// The completed set's hash is kept up to date as bits flip (Zobrist hashing: the XOR of a
/// fixed random word per member), so that the memo can be probed without hashing the whole set
/// on every step.
struct LinearizedSet {
    private(set) var completed: [UInt64]
    private(set) var unknown: [UInt64]
    private(set) var completedHash: UInt64 = 0
    private let memberKeys: [UInt64]

    init(completedCount: Int, unknownCount: Int) {
        completed = Array(repeating: 0, count: (completedCount + 63) / 64)
        unknown = Array(repeating: 0, count: (unknownCount + 63) / 64)
        var random = SplitMix64(seed: 0x6c69_6e63_6865_636b)
        memberKeys = (0..<completedCount).map { _ in random.next() }
    }

    @inline(__always)
    mutating func insert(_ entry: KeyHistory.Entry) {
        let slot = Int(entry.slot)
        if entry.isCompleted {
            completed[slot >> 6] |= 1 << UInt64(slot & 63)
            completedHash ^= memberKeys[slot]
        } else {
            unknown[slot >> 6] |= 1 << UInt64(slot & 63)
        }
    }

    @inline(__always)
    mutating func remove(_ entry: KeyHistory.Entry) {
        let slot = Int(entry.slot)
        if entry.isCompleted {
            completed[slot >> 6] &= ~(1 << UInt64(slot & 63))
            completedHash ^= memberKeys[slot]
        } else {
            unknown[slot >> 6] &= ~(1 << UInt64(slot & 63))
        }
    }
}

/// A fixed-seed generator for the hash keys: the same keys on every run keep the search
/// deterministic (only its speed could depend on them, not its answer).
struct SplitMix64 {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }
}
