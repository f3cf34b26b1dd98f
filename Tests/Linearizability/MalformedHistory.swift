/// A history the check refuses to judge, because a record in it cannot describe anything a
/// client saw: it points at a bug in the recorder, and judging such a history would say nothing
/// about the store.
public struct MalformedHistory: Error, Sendable, Equatable, CustomStringConvertible {
    /// The record's position in the history passed to `checkLinearizability`.
    public var index: Int
    public var operation: RecordedOperation
    public var problem: String

    public var description: String { "operation #\(index) (\(operation)): \(problem)" }

    static func validate(_ history: [RecordedOperation]) throws(MalformedHistory) {
        for (index, operation) in history.enumerated() {
            if let problem = problem(in: operation) {
                throw MalformedHistory(index: index, operation: operation, problem: problem)
            }
        }
    }

    private static func problem(in operation: RecordedOperation) -> String? {
        if operation.returnTime < operation.callTime { return "returned before it was called" }
        switch (operation.kind, operation.outcome) {
        case (.write, .ok(.some)), (.cas, .ok(.some)):
            return "only a read returns a value"
        case (.read, .compareFailed), (.write, .compareFailed):
            return "only a CAS can fail its comparison"
        default:
            return nil
        }
    }
}
