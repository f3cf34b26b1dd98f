/// Checks that a history of operations on a key-value register is linearizable: that some
/// total order of the operations, consistent with real time (an operation that returned before
/// another was called comes first), explains every output (Herlihy & Wing 1990).
///
/// The search is Wing & Gong's (1993) with Lowe's memoization of (set of operations
/// linearized, state), as Porcupine does; keys are independent, so each is checked alone
/// (P-compositionality).
enum LinearizabilityChecker {
    struct Violation: Error, CustomStringConvertible {
        var key: String
        var operations: [KVOperation]
        var description: String {
            "history of key \(key) is not linearizable:\n" + operations.map { "  \($0)" }.joined(separator: "\n")
        }
    }

    static func check(_ history: [KVOperation]) -> Violation? {
        let byKey = Dictionary(grouping: history, by: \.key)
        for key in byKey.keys.sorted() {
            let operations = byKey[key] ?? []
            if !isLinearizable(operations) {
                return Violation(key: key, operations: operations.sorted { $0.callTime < $1.callTime })
            }
        }
        return nil
    }

    /// The register model: the state after `operation` from `state`, or nil if `operation`
    /// could not have produced its output from `state`.
    static func step(_ state: String?, _ operation: KVOperation) -> String?? {
        switch (operation.input, operation.output) {
        case (.put(let value), .ok), (.put(let value), .unknown):
            return .some(value)
        case (.get, .value(let read)):
            return read == state ? .some(state) : nil
        case (.cas(let expected, let value), .ok):
            return state == expected ? .some(value) : nil
        case (.cas(let expected, _), .casFailed):
            return state != expected ? .some(state) : nil
        case (.cas(let expected, let value), .unknown):
            // Had it taken effect here, it did what its comparison says; "never took effect"
            // is the same as taking effect after everything else.
            return state == expected ? .some(value) : .some(state)
        default:
            return nil
        }
    }

    private struct CacheKey: Hashable {
        var linearized: [UInt64]
        var state: String?
    }

    /// Wing & Gong's search over a doubly linked list of call and return events in time order.
    static func isLinearizable(_ operations: [KVOperation]) -> Bool {
        let count = operations.count
        if count == 0 { return true }
        // Events 0..<count are calls, count..<2count returns; sort by time, calls first on ties
        // (an operation called at the instant another returned overlaps it).
        var events = Array(0..<(2 * count))
        func time(_ event: Int) -> UInt64 {
            event < count ? operations[event].callTime : operations[event - count].returnTime
        }
        events.sort { lhs, rhs in
            let (left, right) = (time(lhs), time(rhs))
            if left != right { return left < right }
            return (lhs < count ? 0 : 1, lhs) < (rhs < count ? 0 : 1, rhs)
        }
        // Linked list over positions 1...2count with a head sentinel at 0.
        var next = Array(repeating: -1, count: 2 * count + 1)
        var previous = Array(repeating: -1, count: 2 * count + 1)
        var positionOf = Array(repeating: 0, count: 2 * count)
        for (offset, event) in events.enumerated() {
            let position = offset + 1
            positionOf[event] = position
            previous[position] = offset
            next[offset] = position
        }
        func event(at position: Int) -> Int { events[position - 1] }
        func unlink(_ position: Int) {
            next[previous[position]] = next[position]
            if next[position] != -1 { previous[next[position]] = previous[position] }
        }
        func relink(_ position: Int) {
            next[previous[position]] = position
            if next[position] != -1 { previous[next[position]] = position }
        }

        var linearized = Array(repeating: UInt64(0), count: (count + 63) / 64)
        var cache = Set<CacheKey>()
        var stack: [(call: Int, state: String?)] = []
        var state: String? = nil
        var position = next[0]
        while next[0] != -1 {
            guard position != -1 else { return false }
            let current = event(at: position)
            if current < count {
                let operation = current
                if let newState = step(state, operations[operation]) {
                    var attempt = linearized
                    attempt[operation / 64] |= 1 << UInt64(operation % 64)
                    if cache.insert(CacheKey(linearized: attempt, state: newState)).inserted {
                        stack.append((operation, state))
                        state = newState
                        linearized = attempt
                        unlink(positionOf[operation])
                        unlink(positionOf[operation + count])
                        position = next[0]
                        continue
                    }
                }
                position = next[position]
            } else {
                // A return whose call is not linearized yet: undo the last choice.
                guard let (operation, previousState) = stack.popLast() else { return false }
                state = previousState
                linearized[operation / 64] &= ~(1 << UInt64(operation % 64))
                relink(positionOf[operation + count])
                relink(positionOf[operation])
                position = next[positionOf[operation]]
            }
        }
        return true
    }
}
