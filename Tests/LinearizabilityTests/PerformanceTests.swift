import Linearizability
import TestSupport
import Testing

/// A long, heavily concurrent history on one key, the worst case for the search: every client
/// overlaps every other most of the time; and a history as long as a ten-minute chaos run's.
/// Each runs on a thread of its own: seconds of pure CPU on the cooperative pool starved the
/// timing-sensitive tests running beside them in CI.
/// The times are printed, not asserted (the machine is shared); the deadlines only turn a
/// search gone exponential, or quadratic, into a failure instead of a hang.
@Suite(.dedicatedThread) struct PerformanceTests {
    static let shape = SimulatedHistory.Shape(
        clients: 10, operationsPerClient: 300, keys: ["k"], maxGap: 5, maxLatency: 200,
        unknownPerMille: 10, failedPerMille: 10)

    /// The verdict on `history`, and how long it took.
    static func timedCheck(_ history: [RecordedOperation], within limit: Duration) throws -> (LinearizabilityResult, Duration) {
        var result = LinearizabilityResult.linearizable
        let elapsed = try ContinuousClock().measure {
            result = try checkLinearizability(history, deadline: .now + limit)
        }
        return (result, elapsed)
    }

    @Test func longConcurrentHistoryOnOneKey() throws {
        let history = SimulatedHistory(Self.shape, seed: 7).operations
        let (result, elapsed) = try Self.timedCheck(history, within: .seconds(120))
        print("\(history.count) operations, 10 clients, one key: \(result == .linearizable ? "linearizable" : "\(result)") in \(elapsed)")
        #expect(result == .linearizable)
    }

    /// Two hundred thousand operations, one in a hundred timing out: what grows with the history
    /// (the memo's entries, the longest prefix kept, the timed-out operations still candidates)
    /// must grow no faster than it.
    @Test func historyOfALongRun() throws {
        let shape = SimulatedHistory.Shape(
            clients: 5, operationsPerClient: 40_000, keys: ["a", "b", "c"], maxGap: 50, maxLatency: 500,
            unknownPerMille: 10, failedPerMille: 10)
        let history = SimulatedHistory(shape, seed: 3).operations
        let (result, elapsed) = try Self.timedCheck(history, within: .seconds(60))
        print("\(history.count) operations, 5 clients, three keys: \(result == .linearizable ? "linearizable" : "\(result)") in \(elapsed)")
        #expect(result == .linearizable)
    }

    /// The same, with a read near the end that no order explains: the search has to exhaust
    /// every order of what comes before it.
    @Test func longConcurrentHistoryWithALateViolation() throws {
        var history = SimulatedHistory(Self.shape, seed: 7).operations
        let late = try #require(history.indices.last { history[$0].kind == .read && history[$0].outcome != .unknown })
        history[late].outcome = .ok("never-written")
        let (result, elapsed) = try Self.timedCheck(history, within: .seconds(120))
        guard case .notLinearizable(_, let explanation) = result else {
            Issue.record("expected a violation, got \(result) after \(elapsed)")
            return
        }
        print("\(history.count) operations with a late violation: found in \(elapsed), "
            + "longest prefix \(explanation.longestPrefix.count)")
        print(explanation)
        #expect(explanation.stuck.contains { $0.index == late })
    }
}
