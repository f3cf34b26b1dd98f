/// Where the search finds the operations of unknown outcome it may place next, without looking
/// at each one: a long run piles up thousands of them that never took effect and stay
/// candidates to the end, and looking through them all wherever the search is stuck makes it
/// quadratic.
///
/// Only the next member of each class of interchangeable operations is a candidate
/// (`classifyInterchangeable`), and only classes with members left, so classes with none are
/// unlinked (dancing links, undone in reverse order as the search backtracks). And a CAS fits
/// only where the value is its expected one, so the classes are listed apart: classes of
/// writes in one list, classes of CASes in one list per expected value. In each list classes
/// are in order of their first member's call, so a walk stops at the first called too late.
struct UnknownCandidates {
    static let end: Int32 = -1
    /// Per class, its members by call (entry positions), as ranges of `members`, and their calls.
    private let members: [Int32]
    private let memberCalls: [UInt64]
    private let firstMember: [Int]
    private let firstCall: [UInt64]
    private var placed: [Int32]
    /// Nodes `0..<classCount` are classes; `classCount + list` is the head of a list: list 0
    /// for writes, list `1 + value` for CASes expecting `value`.
    private let classCount: Int32
    private var next: [Int32]
    private var previous: [Int32]

    init(_ history: KeyHistory) {
        let count = history.interchangeableClasses
        classCount = Int32(count)
        var byClass = Array(repeating: [Int32](), count: count)
        // Entries of unknown outcome are in order of call, so each class's members are too.
        for position in history.entries.indices where !history.entries[position].isCompleted {
            byClass[Int(history.entries[position].interchangeable)].append(Int32(position))
        }
        members = byClass.flatMap { $0 }
        memberCalls = members.map { history.entries[Int($0)].call }
        firstMember = byClass.reduce(into: [0]) { starts, members in starts.append(starts.last! + members.count) }
        firstCall = byClass.map { history.entries[Int($0[0])].call }
        placed = Array(repeating: 0, count: count)
        next = Array(repeating: Self.end, count: count + 1 + history.values.values.count)
        previous = next
        // Class numbers follow their first member's call (`classifyInterchangeable`).
        var last = Array((count..<next.count).map(Int32.init))
        for (id, classMembers) in byClass.enumerated() {
            let list: Int
            switch history.entries[Int(classMembers[0])].step.effect {
            case .swap(let expected, _): list = 1 + Int(expected)
            default: list = 0
            }
            next[Int(last[list])] = Int32(id)
            previous[id] = last[list]
            last[list] = Int32(id)
        }
    }

    /// The head of the list of writes, then of CASes expecting `state`.
    func writes() -> Int32 { classCount }
    func swaps(expecting state: Int32) -> Int32 { classCount + 1 + state }

    /// Whether some class of CASes expecting `state` has members left.
    func hasSwaps(expecting state: Int32) -> Bool { next[Int(swaps(expecting: state))] != Self.end }

    /// The class after `node` in its list, or `end`.
    func next(_ node: Int32) -> Int32 { next[Int(node)] }

    /// The first class from `node` on in its list whose next member was called no later than
    /// `bound`, with that member; nil if none.
    func candidate(from node: Int32, calledBy bound: UInt64) -> (node: Int32, member: Int32)? {
        var node = node
        while node != Self.end && firstCall[Int(node)] <= bound {
            let member = firstMember[Int(node)] + Int(placed[Int(node)])
            if memberCalls[member] <= bound { return (node, members[member]) }
            node = next[Int(node)]
        }
        return nil
    }

    /// Records that the class's next member was placed.
    mutating func place(_ member: KeyHistory.Entry) {
        let node = Int(member.interchangeable)
        placed[node] += 1
        if Int(placed[node]) == firstMember[node + 1] - firstMember[node] {
            next[Int(previous[node])] = next[node]
            if next[node] != Self.end { previous[Int(next[node])] = previous[node] }
        }
    }

    /// Undoes the last `place` of the class.
    mutating func unplace(_ member: KeyHistory.Entry) {
        let node = Int(member.interchangeable)
        if Int(placed[node]) == firstMember[node + 1] - firstMember[node] {
            next[Int(previous[node])] = Int32(node)
            if next[node] != Self.end { previous[Int(next[node])] = Int32(node) }
        }
        placed[node] -= 1
    }
}
