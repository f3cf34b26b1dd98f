/// What the search noticed on its way, kept only to explain a violation: recording it costs
/// little, and running the search a second time to find it out would double the cost of every
/// failing check.
struct SearchLog {
    /// The longest prefix of a linearization reached, in order; the first of that length.
    private(set) var longestPrefix: [Int32] = []
    /// How long a prefix of the search's path `longestPrefix` shares with it: only the rest is
    /// copied when the path grows past it, or copying the path on every step of a history of
    /// a hundred thousand operations would take quadratic time.
    private var shared = 0
    /// Per operation, whether its output fitted the state at some point.
    private(set) var fitted: [Bool]
    /// Per operation, the first `ViolationExplanation.refusalsKept` distinct states at which it
    /// was tried and its output did not fit; flat, `kept` slots per operation.
    private var refused: [Int32]
    private var refusedCount: [Int]
    private(set) var refusalsTruncated: [Bool]
    private let kept = ViolationExplanation.refusalsKept

    init(count: Int) {
        fitted = Array(repeating: false, count: count)
        refused = Array(repeating: 0, count: count * kept)
        refusedCount = Array(repeating: 0, count: count)
        refusalsTruncated = Array(repeating: false, count: count)
    }

    mutating func fitted(_ operation: Int32) { fitted[Int(operation)] = true }

    mutating func refused(_ operation: Int32, state: Int32) {
        let operation = Int(operation)
        let base = operation * kept
        let count = refusedCount[operation]
        for slot in base..<(base + count) where refused[slot] == state { return }
        if count == kept {
            refusalsTruncated[operation] = true
        } else {
            refused[base + count] = state
            refusedCount[operation] = count + 1
        }
    }

    func refusals(_ operation: Int32) -> ArraySlice<Int32> {
        let base = Int(operation) * kept
        return refused[base..<(base + refusedCount[Int(operation)])]
    }

    /// Called after each choice is pushed onto the search's path.
    mutating func pushed(_ path: [Int32]) {
        guard path.count > longestPrefix.count else { return }
        longestPrefix.removeSubrange(shared...)
        longestPrefix.append(contentsOf: path[shared...])
        shared = path.count
    }

    /// Called after each choice is popped off it.
    mutating func popped(_ path: [Int32]) { shared = min(shared, path.count) }
}
