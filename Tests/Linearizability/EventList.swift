/// The call and return events of one key's completed operations in time order, as a doubly
/// linked list from which the search lifts an operation's two events when it linearizes the
/// operation, and puts them back, in O(1), when it backtracks (Knuth's dancing links).
/// (Operations of unknown outcome have no return, and the search keeps them apart.)
///
/// Node `i` is operation `i`'s call, node `count + i` its return, node `2 * count` the head.
struct EventList {
    static let end: Int32 = -1
    let count: Int32
    private var next: [Int32]
    private var previous: [Int32]

    var head: Int32 { 2 * count }
    var first: Int32 { next[Int(head)] }

    init(_ entries: [KeyHistory.Entry]) {
        count = Int32(entries.count)
        // Ties go to calls: an operation called at the instant another returned may still be
        // concurrent with it (the clock's resolution hides which came first), so allowing either
        // order is the one that cannot report a false violation. Remaining ties by position, so
        // that the search, and its explanation, are the same on every run.
        let events = (0..<(2 * entries.count)).sorted { left, right in
            let (leftKey, rightKey) = (Self.sortKey(left, entries), Self.sortKey(right, entries))
            if leftKey.time != rightKey.time { return leftKey.time < rightKey.time }
            if leftKey.isReturn != rightKey.isReturn { return !leftKey.isReturn }
            return left < right
        }
        next = Array(repeating: Self.end, count: events.count + 1)
        previous = Array(repeating: Self.end, count: events.count + 1)
        var last = Int(2 * count)
        for event in events {
            next[last] = Int32(event)
            previous[event] = Int32(last)
            last = event
        }
    }

    private static func sortKey(_ event: Int, _ entries: [KeyHistory.Entry]) -> (time: UInt64, isReturn: Bool) {
        event < entries.count ? (entries[event].call, false) : (entries[event - entries.count].ret, true)
    }

    /// The operation whose call `node` is, or nil if `node` is a return or `end`.
    @inline(__always)
    func call(_ node: Int32) -> Int32? { node >= 0 && node < count ? node : nil }

    /// The operation whose return `node` is.
    func returning(_ node: Int32) -> Int32 { node - count }

    @inline(__always)
    func next(_ node: Int32) -> Int32 { next[Int(node)] }

    /// Takes out `operation`'s call and return.
    mutating func lift(_ operation: Int32) {
        unlink(operation)
        unlink(count + operation)
    }

    /// Puts back what `lift(operation)` took out; lifts must be undone in reverse order.
    mutating func unlift(_ operation: Int32) {
        relink(count + operation)
        relink(operation)
    }

    private mutating func unlink(_ node: Int32) {
        let (before, after) = (previous[Int(node)], next[Int(node)])
        next[Int(before)] = after
        if after != Self.end { previous[Int(after)] = before }
    }

    private mutating func relink(_ node: Int32) {
        let (before, after) = (previous[Int(node)], next[Int(node)])
        next[Int(before)] = node
        if after != Self.end { previous[Int(after)] = node }
    }
}
