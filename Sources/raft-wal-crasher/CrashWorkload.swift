import Raft

/// The entries the crash-safety test writes: contents a pure function of the index, so a reader
/// can tell a damaged or misplaced entry from a good one without a copy of what was written.
enum CrashWorkload {
    /// The entry the crash test writes at `index` (term 1, 16 to 615 bytes).
    static func entry(forIndex index: UInt64) -> Entry {
        Entry(term: 1, index: index, kind: .normal, data: data(forIndex: index))
    }

    /// The data of the entry at `index`.
    static func data(forIndex index: UInt64) -> [UInt8] {
        let count = 16 + Int(index &* 7919 % 600)
        var state = index &* 0x9E37_79B9_7F4A_7C15
        return (0..<count).map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
    }
}
