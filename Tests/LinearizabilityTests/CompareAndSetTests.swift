import Linearizability
import Testing

/// A CAS that swapped read its expected value and wrote its new one; one that failed its
/// comparison read something else and wrote nothing.
@Suite struct CompareAndSetTests {
    @Test func swapFromTheCurrentValueIsLinearizable() {
        let history = [
            cas(1, 0...10, nil, "a"),
            cas(2, 20...30, "a", "b"),
            read(3, 40...50, returned: "b"),
        ]
        #expect(check(history) == .linearizable)
    }

    /// Reported as swapped, but its expected value was never current.
    @Test func swapFromAValueThatWasNotCurrentIsAViolation() {
        let history = [write(1, 0...10, "a"), cas(2, 20...30, "b", "c")]
        #expect(isViolation(check(history)))
    }

    /// A swap that took effect changed the value.
    @Test func valueBeforeASwapCannotBeReadAfterIt() {
        let history = [
            write(1, 0...10, "a"),
            cas(2, 20...30, "a", "b"),
            read(3, 40...50, returned: "a"),
        ]
        #expect(isViolation(check(history)))
    }

    /// Two swaps from the same value cannot both succeed.
    @Test func concurrentSwapsFromTheSameValue() {
        let bothWon = [
            write(1, 0...10, "a"),
            cas(2, 20...40, "a", "b"),
            cas(3, 25...45, "a", "c"),
        ]
        #expect(isViolation(check(bothWon)))
        let oneWon = [
            write(1, 0...10, "a"),
            cas(2, 20...40, "a", "b"),
            cas(3, 25...45, "a", "c", .compareFailed),
            read(1, 50...60, returned: "b"),
        ]
        #expect(check(oneWon) == .linearizable)
    }

    /// A failed comparison saw another value, and changed nothing.
    @Test func failedComparisonAgainstAnotherValueIsLinearizable() {
        let history = [
            write(1, 0...10, "a"),
            cas(2, 20...30, "x", "b", .compareFailed),
            read(3, 40...50, returned: "a"),
        ]
        #expect(check(history) == .linearizable)
    }

    /// Reported as failing its comparison, but the value was its expected value throughout.
    @Test func failedComparisonAgainstTheCurrentValueIsAViolation() {
        let history = [write(1, 0...10, "a"), cas(2, 20...30, "a", "b", .compareFailed)]
        #expect(isViolation(check(history)))
    }

    /// A CAS of unknown outcome may have swapped, later than the reads before it...
    @Test func unknownSwapMayTakeEffectLate() {
        let history = [
            write(1, 0...10, "a"),
            cas(2, 20...30, "a", "b", .unknown),
            read(3, 40...50, returned: "a"),
            read(3, 60...70, returned: "b"),
        ]
        #expect(check(history) == .linearizable)
    }

    /// ...but only when its comparison held.
    @Test func unknownSwapCannotTakeEffectFromAnotherValue() {
        let history = [
            write(1, 0...10, "a"),
            cas(2, 20...30, "x", "b", .unknown),
            read(3, 40...50, returned: "b"),
        ]
        #expect(isViolation(check(history)))
    }
}
