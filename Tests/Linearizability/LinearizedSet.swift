import Raft

/// The operations linearized so far, as two bitsets: the completed ones, and those of unknown
/// outcome. The memo compares them differently (`SearchMemo`): a configuration with more
/// operations of unknown outcome still unplaced can do all that one with fewer can.
///
/// The completed set is kept with what the memo needs to handle it in time and space that do
/// not grow with the history: its hash, kept up to date as bits flip (Zobrist hashing: the XOR
/// of a fixed random word per member), and its window, the words between those all set (the
/// operations long linearized) and those all clear (not yet reached), which is all that tells
/// one set from another in a search that moves forward in time.
struct LinearizedSet {
    private var completed: [UInt64]
    private(set) var unknown: [UInt64]
    private(set) var completedHash: UInt64 = 0
    /// The completed set's words before `windowStart` are all set, those from `windowEnd` on
    /// all clear.
    private(set) var windowStart = 0
    private(set) var windowEnd = 0
    private let memberKeys: [UInt64]

    var windowCount: Int { windowEnd - windowStart }

    /// Whether the window equals the `windowCount` words of `words` from `offset`.
    func windowEquals(_ words: [UInt64], at offset: Int) -> Bool {
        for index in 0..<windowCount where words[offset + index] != completed[windowStart + index] { return false }
        return true
    }

    func appendWindow(to words: inout [UInt64]) {
        for index in windowStart..<windowEnd { words.append(completed[index]) }
    }

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
            let word = slot >> 6
            completed[word] |= 1 << UInt64(slot & 63)
            completedHash ^= memberKeys[slot]
            windowEnd = max(windowEnd, word + 1)
            while windowStart < windowEnd && completed[windowStart] == .max { windowStart += 1 }
        } else {
            unknown[slot >> 6] |= 1 << UInt64(slot & 63)
        }
    }

    @inline(__always)
    mutating func remove(_ entry: KeyHistory.Entry) {
        let slot = Int(entry.slot)
        if entry.isCompleted {
            let word = slot >> 6
            completed[word] &= ~(1 << UInt64(slot & 63))
            completedHash ^= memberKeys[slot]
            windowStart = min(windowStart, word)
            while windowEnd > windowStart && completed[windowEnd - 1] == 0 { windowEnd -= 1 }
        } else {
            unknown[slot >> 6] &= ~(1 << UInt64(slot & 63))
        }
    }
}
