import Linearizability
import Testing

/// What the check promises besides the verdict: a deadline it keeps, and records it refuses.
@Suite struct CheckContractTests {
    static let history = [write(1, 0...10, "a"), read(2, 20...30, returned: "a")]

    /// Running out of time is not a pass.
    @Test func passedDeadlineIsTimedOutNotLinearizable() throws {
        let result = try checkLinearizability(Self.history, deadline: .now - .seconds(1))
        #expect(result == .timedOut(key: "k"))
    }

    @Test func distantDeadlineDoesNotChangeTheVerdict() throws {
        #expect(try checkLinearizability(Self.history, deadline: .now + .seconds(60)) == .linearizable)
    }

    @Test func returnBeforeCallIsMalformed() {
        let history = [write(1, 0...10, "a"), RecordedOperation(
            client: 2, key: "k", kind: .read, callTime: 30, returnTime: 20, outcome: .ok("a"))]
        #expect(throws: MalformedHistory.self) { try checkLinearizability(history) }
    }

    @Test func writeReturningAValueIsMalformed() {
        let history = [write(1, 0...10, "a", .ok("a"))]
        let error = #expect(throws: MalformedHistory.self) { try checkLinearizability(history) }
        #expect(error?.index == 0)
        #expect(error?.problem == "only a read returns a value")
    }

    @Test func readFailingAComparisonIsMalformed() {
        #expect(throws: MalformedHistory.self) { try checkLinearizability([read(1, 0...10, .compareFailed)]) }
    }

    @Test func emptyHistoryIsLinearizable() {
        #expect(check([]) == .linearizable)
    }
}
