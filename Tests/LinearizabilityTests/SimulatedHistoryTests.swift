import Raft
import Linearizability
import Testing
import TestSupport

/// The check against histories whose truth is known: linearizable by construction
/// (`SimulatedHistory`), and the same with one read's value changed so that no order can
/// explain it.
@Suite struct SimulatedHistoryTests {
    static let shape = SimulatedHistory.Shape(
        clients: 5, operationsPerClient: 60, keys: ["a", "b", "c"], maxGap: 30, maxLatency: 100,
        unknownPerMille: 50, failedPerMille: 30)
    static let seeds: ClosedRange<UInt64> = 1...200

    /// A bound so that a search gone exponential fails the test instead of hanging it; far
    /// above what these histories take.
    static func check(_ history: [RecordedOperation]) throws -> LinearizabilityResult {
        try checkLinearizability(history, deadline: .now + .seconds(60))
    }

    @Test(.cpuBound) func historiesFromARealRegisterAreLinearizable() throws {
        var outcomes: [String: Int] = [:]
        for seed in Self.seeds {
            let history = SimulatedHistory(Self.shape, seed: seed).operations
            for operation in history { outcomes[Self.category(operation), default: 0] += 1 }
            let result = try Self.check(history)
            #expect(result == .linearizable, "seed \(seed)")
            if case .notLinearizable(_, let explanation) = result { print(explanation) }
        }
        print("simulated operations by kind and outcome:", outcomes.sorted { $0.key < $1.key })
    }

    /// A value no operation wrote, or one written only by an operation called after the read
    /// returned: no order can explain either.
    @Test(.cpuBound) func readsChangedToAnImpossibleValueAreViolations() throws {
        var changedToFuture = 0
        for seed in Self.seeds {
            let history = SimulatedHistory(Self.shape, seed: seed).operations
            var random = SplitMix64(seed: seed)
            guard let position = Self.completedReads(history).randomElement(using: &random) else { continue }

            var neverWritten = history
            neverWritten[position].outcome = .ok("never-written")
            #expect(try Self.check(neverWritten).isViolation(key: history[position].key), "seed \(seed)")

            if let future = Self.valueWrittenOnlyAfter(position, in: history) {
                var readsTheFuture = history
                readsTheFuture[position].outcome = .ok(future)
                #expect(try Self.check(readsTheFuture).isViolation(key: history[position].key), "seed \(seed)")
                changedToFuture += 1
            }
        }
        print("reads changed to a value written only later: \(changedToFuture) of \(Self.seeds.count)")
        #expect(changedToFuture > Self.seeds.count / 2, "the generator no longer makes such histories")
    }

    /// A value some operation did write, at a read where it cannot be known in advance whether
    /// that is possible: only reported, as how often the check catches it.
    @Test(.cpuBound) func readsChangedToAnotherWrittenValue() throws {
        var caught = 0
        var tried = 0
        for seed in Self.seeds {
            let history = SimulatedHistory(Self.shape, seed: seed).operations
            var random = SplitMix64(seed: seed &+ 1_000)
            guard let position = Self.completedReads(history).randomElement(using: &random) else { continue }
            let key = history[position].key
            let others = Set(history.compactMap { Self.written(by: $0, on: key) })
                .subtracting([Self.readValue(history[position])].compactMap { $0 }).sorted()
            guard let other = others.randomElement(using: &random) else { continue }
            var changed = history
            changed[position].outcome = .ok(other)
            tried += 1
            let result = try Self.check(changed)
            #expect(result != .timedOut(key: key), "seed \(seed)")
            if result.isViolation(key: key) { caught += 1 }
        }
        print("reads changed to another written value: \(caught) of \(tried) caught")
    }

    /// "cas compareFailed", "write unknown", ...: to see that the generator makes every kind.
    static func category(_ operation: RecordedOperation) -> String {
        let kind = switch operation.kind {
        case .read: "read"
        case .write: "write"
        case .cas: "cas"
        }
        let outcome = switch operation.outcome {
        case .ok: "ok"
        case .compareFailed: "compareFailed"
        case .failed: "failed"
        case .unknown: "unknown"
        }
        return kind + " " + outcome
    }

    static func completedReads(_ history: [RecordedOperation]) -> [Int] {
        history.indices.filter { history[$0].kind == .read && history[$0].outcome != .unknown }
    }

    static func readValue(_ operation: RecordedOperation) -> String? {
        if case .ok(let value) = operation.outcome { return value }
        return nil
    }

    static func written(by operation: RecordedOperation, on key: String) -> String? {
        guard operation.key == key else { return nil }
        switch operation.kind {
        case .read: return nil
        case .write(let value): return value
        case .cas(_, let new): return new
        }
    }

    /// A value written, on the read's key, by an operation called after the read returned.
    static func valueWrittenOnlyAfter(_ position: Int, in history: [RecordedOperation]) -> String? {
        let read = history[position]
        return history.first { $0.callTime > read.returnTime && written(by: $0, on: read.key) != nil }
            .flatMap { written(by: $0, on: read.key) }
    }
}
