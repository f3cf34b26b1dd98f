import Manifest
import Testing

@testable import Supervisor

@Suite struct RestartPolicyStateMachineTests {
    /// Exits after short runs: each delay doubles from initialDelay to maxDelay, less at most
    /// jitterFraction of it, never below initialDelay.
    @Test(arguments: [UInt64(1), 7, 42, 1234])
    func backoffDoublesUpToTheMaximumWithBoundedJitter(seed: UInt64) {
        var machine = RestartPolicyStateMachine(policy: .testing(), random: SeededGenerator(seed: seed))
        var clock = ManualClock()
        let bases: [Duration] = [1, 2, 4, 8, 16, 16, 16].map { .seconds($0) }
        for base in bases {
            let started = clock.now
            clock.advance(.milliseconds(100))
            guard case .restart(let at, let delay) = machine.decide(after: .exited(code: 1), startedAt: started, now: clock.now)
            else {
                Issue.record("expected a restart")
                return
            }
            #expect(delay <= base)
            #expect(delay >= base * 0.8)
            #expect(delay >= .seconds(1))
            #expect(at == clock.now + delay)
            clock.now = at
        }
        #expect(machine.restartCount == bases.count)
    }

    @Test func theSameSeedReplaysTheSameDelays() {
        func delays(seed: UInt64) -> [Duration] {
            var machine = RestartPolicyStateMachine(policy: .testing(), random: SeededGenerator(seed: seed))
            var clock = ManualClock()
            return (0..<8).compactMap { _ in
                clock.advance(.seconds(1))
                if case .restart(_, let delay) = machine.decide(after: .exited(code: 1), startedAt: nil, now: clock.now) {
                    return delay
                }
                return nil
            }
        }
        #expect(delays(seed: 99) == delays(seed: 99))
        #expect(delays(seed: 99) != delays(seed: 100))
    }

    @Test func withoutJitterTheDelaysAreExact() {
        var machine = RestartPolicyStateMachine(policy: .testing(initial: .milliseconds(250), max: .seconds(2)),
                                                random: SeededGenerator(seed: 1), jitterFraction: 0)
        var clock = ManualClock()
        var seen: [Duration] = []
        for _ in 0..<6 {
            clock.advance(.seconds(1))
            if case .restart(_, let delay) = machine.decide(after: .signaled(signal: 11), startedAt: nil, now: clock.now) {
                seen.append(delay)
            }
        }
        #expect(seen == [.milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2), .seconds(2), .seconds(2)])
    }

    @Test func aStableRunStartsTheBackoffAgain() {
        var machine = RestartPolicyStateMachine(policy: .testing(resetAfter: .seconds(30)), random: SeededGenerator(seed: 3),
                                                jitterFraction: 0)
        var clock = ManualClock()
        for _ in 0..<4 {
            let started = clock.now
            clock.advance(.seconds(1))
            _ = machine.decide(after: .exited(code: 1), startedAt: started, now: clock.now)
        }
        #expect(machine.consecutiveRestarts == 4)
        let started = clock.now
        clock.advance(.seconds(30))
        #expect(value(machine.decide(after: .exited(code: 1), startedAt: started, now: clock.now))
            == .restart(at: clock.now + .seconds(1), delay: .seconds(1)))
        #expect(machine.consecutiveRestarts == 1)
    }

    /// maxRestarts restarts fit in the window; the exit that would need one more fails the
    /// instance with that exit's reason.
    @Test(arguments: [0, 1, 3, 10])
    func moreThanMaxRestartsWithinTheWindowFails(maxRestarts: Int) {
        var machine = RestartPolicyStateMachine(
            policy: .testing(initial: .milliseconds(10), max: .milliseconds(10), maxRestarts: maxRestarts, window: .seconds(60)),
            random: SeededGenerator(seed: 5))
        var clock = ManualClock()
        for _ in 0..<maxRestarts {
            clock.advance(.seconds(1))
            guard case .restart = machine.decide(after: .exited(code: 3), startedAt: nil, now: clock.now) else {
                Issue.record("restart expected")
                return
            }
        }
        clock.advance(.seconds(1))
        let decision = machine.decide(after: .exited(code: 3), startedAt: nil, now: clock.now)
        guard case .fail(let reason) = decision else {
            Issue.record("expected failure, got \(decision)")
            return
        }
        #expect(reason.hasPrefix("exited with status 3"))
        #expect(reason.contains("\(maxRestarts) restart"))
        // The window as a manifest writes it, not as Swift prints a Duration ("60.0 seconds").
        #expect(reason.hasSuffix("within 1m"), "\(reason)")
    }

    @Test func restartsOlderThanTheWindowDoNotCount() {
        var machine = RestartPolicyStateMachine(
            policy: .testing(initial: .milliseconds(10), max: .milliseconds(10), maxRestarts: 2, window: .seconds(10)),
            random: SeededGenerator(seed: 5))
        var clock = ManualClock()
        for _ in 0..<50 {
            clock.advance(.seconds(6))
            guard case .restart = machine.decide(after: .oomKilled, startedAt: nil, now: clock.now) else {
                Issue.record("a restart every 6 s is 2 per 10 s window at most: never failed")
                return
            }
        }
    }

    @Test(arguments: [
        (RestartPolicyKind.never, ExitReason.exited(code: 0), "complete"),
        (.never, .exited(code: 1), "fail"),
        (.never, .signaled(signal: 9), "fail"),
        (.onFailure, .exited(code: 0), "complete"),
        (.onFailure, .exited(code: 2), "restart"),
        (.onFailure, .oomKilled, "restart"),
        (.onFailure, .healthCheckFailed(detail: "HTTP 500"), "restart"),
        (.onFailure, .watchdogMissed, "restart"),
        (.always, .exited(code: 0), "restart"),
        (.always, .unknown(detail: "lost"), "restart"),
    ])
    func policiesDecideByTheExit(kind: RestartPolicyKind, reason: ExitReason, expected: String) {
        var machine = RestartPolicyStateMachine(policy: .testing(kind), random: SeededGenerator(seed: 1))
        let decision = machine.decide(after: reason, startedAt: nil, now: ManualClock().now)
        switch decision {
        case .complete: #expect(expected == "complete")
        case .fail(let why):
            #expect(expected == "fail")
            #expect(why == reason.description)
        case .restart: #expect(expected == "restart")
        }
    }
}
