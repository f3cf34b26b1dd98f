import Linearizability
import Testing

/// Reads and writes of completed operations: real-time order, concurrency, and the register's
/// answers.
@Suite struct RegisterHistoryTests {
    @Test func sequentialHistoryIsLinearizable() {
        let history = [
            read(1, 0...5, returned: nil),
            write(1, 10...20, "a"),
            read(2, 30...40, returned: "a"),
            write(2, 50...60, nil),
            read(1, 70...80, returned: nil),
            write(3, 90...100, "b"),
            read(3, 110...120, returned: "b"),
        ]
        #expect(check(history) == .linearizable)
    }

    /// A read concurrent with a write may see the value before it or after it.
    @Test(arguments: ["a", "b"])
    func readOverlappingAWriteMaySeeEitherValue(seen: String) {
        let history = [
            write(1, 0...10, "a"),
            write(2, 20...50, "b"),
            read(3, 30...40, returned: seen),
        ]
        #expect(check(history) == .linearizable)
    }

    /// Two overlapping writes may take effect in either order. The search tries "a" then "b"
    /// first, so seeing "a" needs the other order of the same two writes: a memo keyed on the
    /// set of operations alone, without the state, would wrongly skip it.
    @Test(arguments: ["a", "b"])
    func overlappingWritesMayTakeEffectInEitherOrder(last: String) {
        let history = [
            write(1, 0...50, "a"),
            write(2, 10...40, "b"),
            read(3, 60...70, returned: last),
            read(3, 80...90, returned: last),
        ]
        #expect(check(history) == .linearizable)
    }

    /// Called at the instant the write was acknowledged: the clock cannot tell the order, so
    /// the read may still come first.
    @Test func callAtTheSameInstantAsAReturnCountsAsConcurrent() {
        let history = [write(1, 0...10, "a"), read(2, 10...20, returned: nil)]
        #expect(check(history) == .linearizable)
    }

    /// A slow write that took effect last, after two hundred writes and reads that overlap it:
    /// the search tries it first, and must undo everything back to it, across many words of
    /// the bitsets that the memo keeps only windows of.
    @Test func slowWriteThatTookEffectLast() {
        var history = [write(1, 0...1_000_000, "slow")]
        for round in 0..<UInt64(100) {
            let start = 10 + round * 100
            history.append(write(2, start...(start + 10), "w\(round)"))
            history.append(read(2, (start + 20)...(start + 30), returned: "w\(round)"))
        }
        history.append(read(3, 1_000_001...1_000_010, returned: "slow"))
        #expect(check(history) == .linearizable)
    }

    @Test func staleReadAfterACompletedWriteIsAViolation() {
        let history = [
            write(1, 0...10, "a"),
            write(1, 20...30, "b"),
            read(2, 40...50, returned: "a"),
        ]
        #expect(isViolation(check(history)))
    }

    @Test func readOfAbsentAfterACompletedWriteIsAViolation() {
        #expect(isViolation(check([write(1, 0...10, "a"), read(2, 20...30, returned: nil)])))
    }

    /// An acknowledged write, seen, then gone: the value goes back without any write to put it
    /// back.
    @Test func lostAcknowledgedWriteIsAViolation() {
        let history = [
            write(1, 0...10, "a"),
            read(2, 20...30, returned: "a"),
            write(1, 40...50, "b"),
            read(3, 60...70, returned: "b"),
            read(2, 80...90, returned: "a"),
        ]
        #expect(isViolation(check(history)))
    }

    /// A value no operation wrote.
    @Test func readOfAValueNeverWrittenIsAViolation() {
        let history = [write(1, 0...100, "a"), read(2, 10...90, returned: "z")]
        #expect(isViolation(check(history)))
    }

    /// A write refused outright never took effect: it can neither be seen nor hide the value
    /// before it.
    @Test func failedWriteNeverTakesEffect() {
        let unseen = [
            write(1, 0...10, "a"),
            write(2, 20...30, "b", .failed),
            read(3, 40...50, returned: "a"),
        ]
        #expect(check(unseen) == .linearizable)
        let seen = [
            write(1, 0...10, "a"),
            write(2, 20...30, "b", .failed),
            read(3, 40...50, returned: "b"),
        ]
        #expect(isViolation(check(seen)))
    }

    /// A read that timed out returned nothing, so it constrains nothing.
    @Test func readOfUnknownOutcomeIsIgnored() {
        let history = [write(1, 0...10, "a"), read(2, 20...30, .unknown), read(3, 40...50, returned: "a")]
        #expect(check(history) == .linearizable)
    }

    /// Each key is its own register: what one key holds says nothing about another.
    @Test func keysAreIndependent() {
        let history = [
            write(1, 0...10, "a", key: "x"),
            read(2, 20...30, returned: nil, key: "y"),
            write(2, 40...50, "b", key: "y"),
            read(1, 60...70, returned: "a", key: "x"),
            read(1, 80...90, returned: "b", key: "y"),
        ]
        #expect(check(history) == .linearizable)
    }

    /// A violation on one key is found, and named, among linearizable others.
    @Test func violationIsReportedForItsKey() {
        let history = [
            write(1, 0...10, "a", key: "x"),
            read(2, 20...30, returned: "a", key: "x"),
            write(1, 0...10, "a", key: "y"),
            read(2, 20...30, returned: nil, key: "y"),
            write(1, 0...10, "a", key: "z"),
            read(2, 20...30, returned: "a", key: "z"),
        ]
        #expect(isViolation(check(history), key: "y"))
    }
}
