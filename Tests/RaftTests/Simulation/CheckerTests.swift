import Testing
@testable import Raft

/// The checkers must be able to fail: each is fed a broken history or broken logs and has to
/// report it, and a correct one and has to accept it.
@Suite struct LinearizabilityCheckerTests {
    static func op(_ client: Int, _ input: KVOperation.Input, _ output: KVOperation.Output,
                   _ call: UInt64, _ ret: UInt64, key: String = "k") -> KVOperation {
        KVOperation(client: client, key: key, input: input, output: output, callTime: call, returnTime: ret)
    }

    @Test func acceptsSequentialHistory() {
        let history = [
            Self.op(0, .put("a"), .ok, 0, 10),
            Self.op(1, .get, .value("a"), 20, 30),
            Self.op(0, .cas(expected: "a", value: "b"), .ok, 40, 50),
            Self.op(1, .cas(expected: "a", value: "c"), .casFailed, 60, 70),
            Self.op(1, .get, .value("b"), 80, 90),
        ]
        #expect(LinearizabilityChecker.check(history) == nil)
    }

    @Test func acceptsConcurrentOperationsInEitherOrder() {
        // The get overlaps both puts: it may see either.
        let history = [
            Self.op(0, .put("a"), .ok, 0, 50),
            Self.op(1, .put("b"), .ok, 10, 40),
            Self.op(2, .get, .value("a"), 5, 60),
            Self.op(2, .get, .value("a"), 70, 80),
        ]
        #expect(LinearizabilityChecker.check(history) == nil)
    }

    @Test func rejectsStaleRead() {
        let history = [
            Self.op(0, .put("a"), .ok, 0, 10),
            Self.op(1, .get, .value(nil), 20, 30),
        ]
        #expect(LinearizabilityChecker.check(history) != nil)
    }

    @Test func rejectsLostWrite() {
        let history = [
            Self.op(0, .put("a"), .ok, 0, 10),
            Self.op(0, .put("b"), .ok, 20, 30),
            Self.op(1, .get, .value("a"), 40, 50),
        ]
        #expect(LinearizabilityChecker.check(history) != nil)
    }

    @Test func rejectsReadGoingBackInTime() {
        // Two reads that each overlap the write but see it, then not.
        let history = [
            Self.op(0, .put("a"), .ok, 0, 100),
            Self.op(1, .get, .value("a"), 10, 20),
            Self.op(2, .get, .value(nil), 30, 40),
        ]
        #expect(LinearizabilityChecker.check(history) != nil)
    }

    @Test func rejectsTwoSuccessfulCompareAndSwapsFromTheSameValue() {
        let history = [
            Self.op(0, .cas(expected: nil, value: "x"), .ok, 0, 10),
            Self.op(1, .cas(expected: nil, value: "y"), .ok, 20, 30),
        ]
        #expect(LinearizabilityChecker.check(history) != nil)
    }

    @Test func unknownWriteMayOrMayNotHaveHappened() {
        let tookEffect = [
            Self.op(0, .put("a"), .unknown, 0, .max),
            Self.op(1, .get, .value(nil), 5, 10),
            Self.op(1, .get, .value("a"), 20, 30),
        ]
        #expect(LinearizabilityChecker.check(tookEffect) == nil)
        let never = [
            Self.op(0, .put("a"), .unknown, 0, .max),
            Self.op(1, .get, .value(nil), 20, 30),
        ]
        #expect(LinearizabilityChecker.check(never) == nil)
        // But once seen it cannot be unseen.
        let flickers = tookEffect + [Self.op(1, .get, .value(nil), 40, 50)]
        #expect(LinearizabilityChecker.check(flickers) != nil)
    }

    @Test func keysAreCheckedIndependently() {
        let history = [
            Self.op(0, .put("1"), .ok, 0, 10, key: "x"),
            Self.op(1, .get, .value(nil), 20, 30, key: "y"),
            Self.op(1, .get, .value("2"), 40, 50, key: "x"),
        ]
        let violation = LinearizabilityChecker.check(history)
        #expect(violation?.key == "x")
    }
}

@Suite struct SafetyCheckerTests {
    @Test func rejectsTwoLeadersInOneTerm() throws {
        var checker = SafetyChecker()
        try checker.observeLeader(1, term: 3)
        try checker.observeLeader(1, term: 3)
        try checker.observeLeader(2, term: 4)
        #expect(throws: SafetyChecker.Violation.self) { try checker.observeLeader(2, term: 3) }
    }

    @Test func rejectsLogsThatDisagreeAtTheSameIndexAndTerm() throws {
        var checker = SafetyChecker()
        try checker.observeWrite(node: 1, entries: [Entry(term: 2, index: 5, data: [1]), Entry(term: 2, index: 6, data: [2])],
                                 previousTerm: 1)
        // The same entries written again elsewhere are fine.
        try checker.observeWrite(node: 2, entries: [Entry(term: 2, index: 6, data: [2])], previousTerm: 2)
        // Another entry with the same index and term is not.
        #expect(throws: SafetyChecker.Violation.self) {
            try checker.observeWrite(node: 3, entries: [Entry(term: 2, index: 6, data: [9])], previousTerm: 2)
        }
        // Nor is the same entry after a different history.
        #expect(throws: SafetyChecker.Violation.self) {
            try checker.observeWrite(node: 3, entries: [Entry(term: 2, index: 5, data: [1])], previousTerm: 2)
        }
    }

    @Test func rejectsLeaderMissingACommittedEntry() throws {
        var checker = SafetyChecker()
        checker.observeCommit(commitIndex: 7, entryTerm: 2, nodeTerm: 2)
        let goodLog: (UInt64) -> UInt64? = { $0 <= 9 ? 2 : nil }
        let shortLog: (UInt64) -> UInt64? = { $0 <= 6 ? 2 : nil }
        let otherLog: (UInt64) -> UInt64? = { $0 <= 9 ? 1 : nil }
        try checker.checkLeaderCompleteness(leader: 1, term: 3, snapshotIndex: 0, termAt: goodLog)
        // A leader of the same term may lag (it is the one committing); later ones may not.
        try checker.checkLeaderCompleteness(leader: 1, term: 2, snapshotIndex: 0, termAt: shortLog)
        #expect(throws: SafetyChecker.Violation.self) {
            try checker.checkLeaderCompleteness(leader: 2, term: 3, snapshotIndex: 0, termAt: shortLog)
        }
        #expect(throws: SafetyChecker.Violation.self) {
            try checker.checkLeaderCompleteness(leader: 2, term: 3, snapshotIndex: 0, termAt: otherLog)
        }
        // Compacted into a snapshot counts as held.
        try checker.checkLeaderCompleteness(leader: 2, term: 3, snapshotIndex: 8, termAt: shortLog)
    }

    @Test func rejectsStateMachinesThatDiverge() throws {
        var checker = SafetyChecker()
        var first = KVStore()
        var second = KVStore()
        _ = first.apply(Entry(term: 1, index: 1, data: KVCommand.put(opID: 1, key: "k", value: "a").encoded()))
        _ = second.apply(Entry(term: 1, index: 1, data: KVCommand.put(opID: 1, key: "k", value: "a").encoded()))
        try checker.observeApplied(node: 1, index: 1, chain: first.chain)
        try checker.observeApplied(node: 2, index: 1, chain: second.chain)
        _ = first.apply(Entry(term: 1, index: 2, data: KVCommand.put(opID: 2, key: "k", value: "b").encoded()))
        _ = second.apply(Entry(term: 2, index: 2, data: KVCommand.put(opID: 3, key: "k", value: "c").encoded()))
        try checker.observeApplied(node: 1, index: 2, chain: first.chain)
        #expect(throws: SafetyChecker.Violation.self) {
            try checker.observeApplied(node: 2, index: 2, chain: second.chain)
        }
    }

    @Test func snapshotCarriesTheChain() {
        var store = KVStore()
        _ = store.apply(Entry(term: 1, index: 1, data: KVCommand.put(opID: 1, key: "k", value: "a").encoded()))
        _ = store.apply(Entry(term: 1, index: 2, data: KVCommand.cas(opID: 2, key: "k", expected: "a", value: "b").encoded()))
        let restored = KVStore(snapshotData: store.snapshotData())
        #expect(restored.values == ["k": "b"])
        #expect(restored.appliedIndex == 2)
        #expect(restored.chain == store.chain)
    }
}
