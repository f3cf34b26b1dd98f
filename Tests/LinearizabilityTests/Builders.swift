import Linearizability
import Testing

// Short constructors for hand-written histories: `write(1, 0...10, "a")` is client 1 writing "a",
// called at 0 and acknowledged at 10.

func read(_ client: Int, _ window: ClosedRange<UInt64>, returned value: String?, key: String = "k") -> RecordedOperation {
    RecordedOperation(
        client: client, key: key, kind: .read, callTime: window.lowerBound, returnTime: window.upperBound,
        outcome: .ok(value))
}

func read(
    _ client: Int, _ window: ClosedRange<UInt64>, _ outcome: RecordedOperation.Outcome, key: String = "k"
) -> RecordedOperation {
    RecordedOperation(
        client: client, key: key, kind: .read, callTime: window.lowerBound, returnTime: window.upperBound,
        outcome: outcome)
}

func write(
    _ client: Int, _ window: ClosedRange<UInt64>, _ value: String?, _ outcome: RecordedOperation.Outcome = .ok(nil),
    key: String = "k"
) -> RecordedOperation {
    RecordedOperation(
        client: client, key: key, kind: .write(value), callTime: window.lowerBound, returnTime: window.upperBound,
        outcome: outcome)
}

func cas(
    _ client: Int, _ window: ClosedRange<UInt64>, _ expected: String?, _ new: String?,
    _ outcome: RecordedOperation.Outcome = .ok(nil), key: String = "k"
) -> RecordedOperation {
    RecordedOperation(
        client: client, key: key, kind: .cas(expected: expected, new: new), callTime: window.lowerBound,
        returnTime: window.upperBound, outcome: outcome)
}

/// The check without a deadline, which cannot throw on the well-formed histories of these tests.
func check(_ history: [RecordedOperation]) -> LinearizabilityResult {
    do {
        return try checkLinearizability(history)
    } catch {
        Issue.record("malformed history: \(error)")
        return .timedOut(key: "")
    }
}

func isViolation(_ result: LinearizabilityResult, key: String = "k") -> Bool {
    result.isViolation(key: key)
}

extension LinearizabilityResult {
    func isViolation(key: String) -> Bool {
        if case .notLinearizable(key, _) = self { return true }
        return false
    }
}
