import Linearizability

/// Linearizability by its definition, for histories of a few operations: try every order of
/// every subset that includes all completed operations, keep those that respect real time, and
/// run each against a register. No memo, no pruning beyond a failed step, nothing shared with
/// the checker: what the checker's shortcuts must agree with.
enum BruteForceChecker {
    static func isLinearizable(_ history: [RecordedOperation]) -> Bool {
        let keys = Set(history.map(\.key))
        return keys.allSatisfy { key in
            let operations = history.filter { $0.key == key && $0.outcome != .failed && !isUnknownRead($0) }
            return search(operations, placed: Array(repeating: false, count: operations.count), value: nil)
        }
    }

    private static func isUnknownRead(_ operation: RecordedOperation) -> Bool {
        operation.kind == .read && operation.outcome == .unknown
    }

    private static func search(_ operations: [RecordedOperation], placed: [Bool], value: String?) -> Bool {
        let completedLeft = operations.indices.contains { !placed[$0] && operations[$0].outcome != .unknown }
        if !completedLeft { return true }  // The unknown ones left never took effect.
        for next in operations.indices where !placed[next] {
            // Real time: nothing left over may have returned before this one was called.
            let mustWait = operations.indices.contains {
                !placed[$0] && $0 != next && operations[$0].outcome != .unknown
                    && operations[$0].returnTime < operations[next].callTime
            }
            guard !mustWait, let after = apply(operations[next], to: value) else { continue }
            var placedNow = placed
            placedNow[next] = true
            if search(operations, placed: placedNow, value: after) { return true }
        }
        return false
    }

    /// The value after `operation` from `value`, or nil if its output contradicts `value`.
    private static func apply(_ operation: RecordedOperation, to value: String?) -> String?? {
        switch (operation.kind, operation.outcome) {
        case (.read, .ok(let read)): return read == value ? .some(value) : nil
        case (.write(let new), _): return .some(new)
        case (.cas(let expected, let new), .ok), (.cas(let expected, let new), .unknown):
            return expected == value ? .some(new) : nil
        case (.cas(let expected, _), .compareFailed): return expected != value ? .some(value) : nil
        default: return nil
        }
    }
}
