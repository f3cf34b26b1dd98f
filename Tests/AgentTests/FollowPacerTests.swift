import AgentAPI
import Testing

/// The pacing of deployctl's following commands (`kv watch`, `events --follow`, a rollout's
/// progress).
@Suite struct FollowPacerTests {
    /// Answers with nothing new that did not wait (an agent shutting down ends every wait at once)
    /// are asked again after 1, 2, 4 … 30 s, not at once; an answer with news resets that.
    @Test func quickAnswersWithNothingNewAreNotAskedAgainAtOnce() {
        var pacer = FollowPacer()
        let pauses = (0..<7).map { _ in pacer.afterAnswer(changed: false, took: .milliseconds(5), ofAWait: .seconds(300)) }
        #expect(pauses == [1, 2, 4, 8, 16, 30, 30].map { Duration.seconds($0) })
        #expect(pacer.afterAnswer(changed: true, took: .milliseconds(5), ofAWait: .seconds(300)) == .zero)
        #expect(pacer.afterAnswer(changed: false, took: .milliseconds(5)) == .seconds(1))
    }

    /// An answer that used its wait is asked again at once even with nothing new: a wait the
    /// agent cut at its own limit, or a short one the user asked for.
    @Test func answersThatWaitedAreAskedAgainAtOnce() {
        var pacer = FollowPacer()
        #expect(pacer.afterAnswer(changed: false, took: .seconds(60), ofAWait: .seconds(300)) == .zero)
        #expect(pacer.afterAnswer(changed: false, took: .seconds(1)) == .zero)
        #expect(pacer.afterAnswer(changed: false, took: .milliseconds(60), ofAWait: .milliseconds(100)) == .zero)
        #expect(pacer.afterAnswer(changed: false, took: .milliseconds(40), ofAWait: .milliseconds(100)) == .seconds(1))
        #expect(pacer.afterAnswer(changed: false, took: .zero, ofAWait: .zero) == .zero)
    }

    @Test func failuresBackOffAndAnAnswerResets() {
        var pacer = FollowPacer()
        #expect([pacer.afterFailure(), pacer.afterFailure(), pacer.afterFailure()] == [.seconds(1), .seconds(2), .seconds(4)])
        #expect(pacer.afterAnswer(changed: true, took: .zero) == .zero)
        #expect(pacer.afterFailure() == .seconds(1))
    }
}
