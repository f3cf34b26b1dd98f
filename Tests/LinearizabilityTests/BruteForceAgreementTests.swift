import Raft
import Linearizability
import TestSupport
import Testing

/// The checker against the definition (`BruteForceChecker`) on many small random histories,
/// with few values so that operations collide: the memo, and the rules that spare the search
/// most placements of operations of unknown outcome, must never change a verdict either way.
@Suite(.dedicatedThread) struct BruteForceAgreementTests {
    static let values: [String?] = [nil, "a", "b"]

    @Test func verdictsAgreeWithTheDefinition() throws {
        var linearizable = 0
        let cases = 5_000
        for seed in 0..<UInt64(cases) {
            var random = SplitMix64(seed: seed)
            let history = Self.randomHistory(&random)
            let expected = BruteForceChecker.isLinearizable(history)
            let result = try checkLinearizability(history)
            #expect(result.isLinearizable == expected, "seed \(seed): \(result)\n\(history.map { "  \($0) [\($0.callTime), \($0.returnTime)]" }.joined(separator: "\n"))")
            if case .timedOut = result { Issue.record("no deadline, yet timed out") }
            if expected { linearizable += 1 }
        }
        print("random small histories: \(linearizable) of \(cases) linearizable")
        // Both verdicts must be common, or this compares little.
        #expect(linearizable > cases / 5 && linearizable < cases * 4 / 5)
    }

    static func randomHistory(_ random: inout SplitMix64) -> [RecordedOperation] {
        let keys = Bool.random(using: &random) ? ["x"] : ["x", "y"]
        return (0..<Int.random(in: 1...9, using: &random)).map { client in
            let call = UInt64.random(in: 0...15, using: &random)
            let returnTime = call + UInt64.random(in: 0...8, using: &random)
            let value = { (random: inout SplitMix64) in Self.values.randomElement(using: &random)! }
            let kind: RecordedOperation.Kind
            let outcome: RecordedOperation.Outcome
            let draw = Int.random(in: 0..<10, using: &random)
            switch Int.random(in: 0..<3, using: &random) {
            case 0:
                kind = .read
                outcome = draw < 8 ? .ok(value(&random)) : draw < 9 ? .unknown : .failed
            case 1:
                kind = .write(value(&random))
                outcome = draw < 6 ? .ok(nil) : draw < 9 ? .unknown : .failed
            default:
                kind = .cas(expected: value(&random), new: value(&random))
                outcome = draw < 4 ? .ok(nil) : draw < 6 ? .compareFailed : draw < 9 ? .unknown : .failed
            }
            return RecordedOperation(
                client: client, key: keys.randomElement(using: &random)!, kind: kind, callTime: call,
                returnTime: returnTime, outcome: outcome)
        }
    }
}
