import Linearizability
import Testing

/// A write that timed out may take effect at any time after its call, long after the client
/// gave up, or never; but only once.
@Suite struct UnknownOutcomeTests {
    @Test func unknownWriteThatWasLaterReadIsLinearizable() {
        let history = [
            write(1, 0...10, "a"),
            write(2, 20...30, "b", .unknown),
            read(3, 40...50, returned: "b"),
        ]
        #expect(check(history) == .linearizable)
    }

    @Test func unknownWriteNeverReadIsLinearizable() {
        let history = [
            write(1, 0...10, "a"),
            write(2, 20...30, "b", .unknown),
            read(3, 40...50, returned: "a"),
            read(3, 60...70, returned: "a"),
        ]
        #expect(check(history) == .linearizable)
    }

    /// Seen only after a read that happened after the client gave up: the request was still
    /// queued somewhere. The time it gave up at bounds nothing.
    @Test func unknownWriteMayTakeEffectAfterTheClientGaveUp() {
        let history = [
            write(1, 0...10, "a"),
            write(2, 20...30, "b", .unknown),
            read(3, 40...50, returned: "a"),
            read(3, 60...70, returned: "b"),
        ]
        #expect(check(history) == .linearizable)
    }

    /// Not before its call, though.
    @Test func unknownWriteCannotBeSeenBeforeItsCall() {
        let history = [
            read(3, 0...10, returned: "b"),
            write(2, 20...30, "b", .unknown),
        ]
        #expect(isViolation(check(history)))
    }

    /// Once seen, it took effect, once: the older value cannot come back.
    @Test func unknownWriteOnceSeenStays() {
        let history = [
            write(1, 0...10, "a"),
            write(2, 20...30, "b", .unknown),
            read(3, 40...50, returned: "b"),
            read(3, 60...70, returned: "a"),
        ]
        #expect(isViolation(check(history)))
    }
}
