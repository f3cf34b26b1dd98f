import Linearizability
import Testing

/// A long, heavily concurrent history on one key, the worst case for the search: every client
/// overlaps every other most of the time. The times are printed, not asserted (the machine is
/// shared); the deadline only turns a search gone exponential into a failure instead of a hang.
@Suite struct PerformanceTests {
    static let shape = SimulatedHistory.Shape(
        clients: 10, operationsPerClient: 300, keys: ["k"], maxGap: 5, maxLatency: 200,
        unknownPerMille: 10, failedPerMille: 10)

    @Test func longConcurrentHistoryOnOneKey() throws {
        let history = SimulatedHistory(Self.shape, seed: 7).operations
        let clock = ContinuousClock()
        var result = LinearizabilityResult.linearizable
        let elapsed = try clock.measure {
            result = try checkLinearizability(history, deadline: .now + .seconds(120))
        }
        print("\(history.count) operations, 10 clients, one key: \(result == .linearizable ? "linearizable" : "\(result)") in \(elapsed)")
        #expect(result == .linearizable)
    }

    /// The same, with a read near the end that no order explains: the search has to exhaust
    /// every order of what comes before it.
    @Test func longConcurrentHistoryWithALateViolation() throws {
        var history = SimulatedHistory(Self.shape, seed: 7).operations
        let late = try #require(history.indices.last { history[$0].kind == .read && history[$0].outcome != .unknown })
        history[late].outcome = .ok("never-written")
        let clock = ContinuousClock()
        var result = LinearizabilityResult.linearizable
        let elapsed = try clock.measure {
            result = try checkLinearizability(history, deadline: .now + .seconds(120))
        }
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
