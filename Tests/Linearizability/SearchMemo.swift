import Raft

/// Lowe's memo: the configurations (operations linearized, state) the search has reached.
/// Reaching one again, by another order of the same operations, cannot lead anywhere the first
/// visit did not, so the search skips it; this is what turns Wing & Gong's factorial search
/// into one that handles thousands of operations.
///
/// It also skips a configuration covered by one that failed: the same completed operations
/// and state, with fewer of the operations of unknown outcome placed. Those operations
/// constrain nothing in real time (no return), so having more of them left to place only adds
/// possibilities; without this, every point at which a timed-out write could have taken effect,
/// or not, multiplies the configurations of a failing search. Only configurations fully
/// explored (`finished`) cover others: one still on the search's path has not failed yet.
///
/// Entries live in flat arrays (bitsets' words back to back), chained by hash, so that an
/// insert costs no allocation of its own. Of the completed set, an entry keeps only the window
/// (`LinearizedSet`): a whole set per entry would make the memo quadratic in the history.
struct SearchMemo {
    private let unknownWords: Int
    private var windows: [UInt64] = []
    /// Per entry, where its window starts in the set, and where it is in `windows`.
    private var windowStarts: [Int32] = []
    private var windowOffsets: [Int] = []
    private var unknown: [UInt64] = []
    private var states: [Int32] = []
    private var finished: [Bool] = []
    /// Per entry, the previous entry with the same hash, or -1.
    private var sameHash: [Int] = []
    /// Per hash, its newest entry.
    private var newest: [UInt64: Int] = [:]
    /// Distinct states get unrelated hashes: the set's hash is combined with one of these.
    private let stateKeys: [UInt64]

    var count: Int { states.count }

    init(unknownWords: Int, stateCount: Int) {
        self.unknownWords = unknownWords
        var random = SplitMix64(seed: 0x6d65_6d6f)
        stateKeys = (0..<stateCount).map { _ in random.next() }
    }

    /// Whether a finished configuration covers (`set`, `state`). (The same configuration
    /// cannot still be on the search's path: every step along it places one more operation.)
    func covers(_ set: LinearizedSet, state: Int32) -> Bool {
        var entry = newest[hash(set, state)] ?? -1
        while entry >= 0 {
            if finished[entry] && states[entry] == state && sameCompleted(entry, set)
                && unknownSubset(entry, of: set.unknown)
            {
                return true
            }
            entry = sameHash[entry]
        }
        return false
    }

    /// Records (`set`, `state`), unless covered, and returns its entry; nil if covered.
    mutating func insert(_ set: LinearizedSet, state: Int32) -> Int? {
        if covers(set, state: state) { return nil }
        let hash = hash(set, state)
        let inserted = states.count
        sameHash.append(newest[hash] ?? -1)
        newest[hash] = inserted
        states.append(state)
        finished.append(false)
        windowStarts.append(Int32(set.windowStart))
        windowOffsets.append(windows.count)
        set.appendWindow(to: &windows)
        unknown.append(contentsOf: set.unknown)
        return inserted
    }

    /// Every way on from the entry's configuration has been tried, and failed.
    mutating func finish(_ entry: Int) { finished[entry] = true }

    private func hash(_ set: LinearizedSet, _ state: Int32) -> UInt64 {
        set.completedHash ^ stateKeys[Int(state)]
    }

    private func sameCompleted(_ entry: Int, _ set: LinearizedSet) -> Bool {
        let offset = windowOffsets[entry]
        let end = entry + 1 < windowOffsets.count ? windowOffsets[entry + 1] : windows.count
        return Int(windowStarts[entry]) == set.windowStart && end - offset == set.windowCount
            && set.windowEquals(windows, at: offset)
    }

    private func unknownSubset(_ entry: Int, of words: [UInt64]) -> Bool {
        let start = entry * unknownWords
        for offset in 0..<unknownWords where unknown[start + offset] & ~words[offset] != 0 { return false }
        return true
    }
}
