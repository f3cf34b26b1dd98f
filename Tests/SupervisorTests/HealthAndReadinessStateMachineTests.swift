import Manifest
import Testing

@testable import Supervisor

@Suite struct HealthCheckStateMachineTests {
    /// Runs one check at each interval with the given results; returns the transitions.
    static func run(_ machine: inout HealthCheckStateMachine, _ results: [Bool], clock: inout ManualClock)
        -> [HealthCheckStateMachine.Transition?]
    {
        results.map { passed in
            if let next = machine.nextCheckAt { clock.now = max(clock.now, next) }
            #expect(value(machine.tick(now: clock.now)))
            clock.advance(.milliseconds(5))
            return machine.completed(passed: passed, detail: passed ? "ok" : "refused", now: clock.now)
        }
    }

    @Test(arguments: [(1, 1), (2, 3), (3, 2)])
    func flappingMovesBetweenHealthyAndUnhealthyByTheThresholds(healthy: Int, unhealthy: Int) {
        var clock = ManualClock()
        var machine = HealthCheckStateMachine(check: .testing(healthy: healthy, unhealthy: unhealthy), launchedAt: clock.now,
                                              firstCheckAt: clock.now)
        var transitions = Self.run(&machine, Array(repeating: true, count: healthy), clock: &clock)
        #expect(transitions.last == .becameHealthy)
        #expect(transitions.dropLast().allSatisfy { $0 == nil })
        // A failure streak shorter than the threshold, broken by a pass, changes nothing.
        transitions = Self.run(&machine, Array(repeating: false, count: unhealthy - 1) + [true], clock: &clock)
        #expect(transitions.allSatisfy { $0 == nil })
        #expect(machine.status == .healthy)
        transitions = Self.run(&machine, Array(repeating: false, count: unhealthy), clock: &clock)
        #expect(transitions.last == .becameUnhealthy(detail: "refused"))
        #expect(machine.status == .unhealthy)
        transitions = Self.run(&machine, Array(repeating: true, count: healthy), clock: &clock)
        #expect(transitions.last == .becameHealthy)
    }

    @Test func failuresInTheStartPeriodDoNotCountUntilTheFirstPass() {
        var clock = ManualClock()
        let launched = clock.now
        var machine = HealthCheckStateMachine(
            check: .testing(interval: .seconds(1), startPeriod: .seconds(5), unhealthy: 1), launchedAt: launched,
            firstCheckAt: launched + .seconds(1))
        #expect(Self.run(&machine, [false, false, false], clock: &clock).allSatisfy { $0 == nil })
        #expect(machine.status == .starting)
        #expect(Self.run(&machine, [true], clock: &clock) == [.becameHealthy])
        // Still within the start period, but after a pass failures count.
        #expect(clock.now - launched < .seconds(5))
        #expect(Self.run(&machine, [false], clock: &clock) == [.becameUnhealthy(detail: "refused")])
    }

    /// `healthyThreshold` passes must come in a row: a failure in the start period does not count
    /// towards unhealthy, but it ends a run of passes. Before, pass, fail, pass, fail, pass made
    /// an instance with a threshold of 3 healthy (and ready, with `readiness: health`).
    @Test func aFailureInTheStartPeriodEndsARunOfPasses() {
        var clock = ManualClock()
        var machine = HealthCheckStateMachine(check: .testing(interval: .seconds(1), startPeriod: .seconds(60), healthy: 3, unhealthy: 1),
                                              launchedAt: clock.now, firstCheckAt: clock.now + .seconds(1))
        #expect(Self.run(&machine, [true, false, true, false, true], clock: &clock).allSatisfy { $0 == nil })
        #expect(machine.status == .starting)
        #expect(Self.run(&machine, [true, true], clock: &clock) == [nil, .becameHealthy])
    }

    @Test func aFailureAfterTheStartPeriodCounts() {
        var clock = ManualClock()
        var machine = HealthCheckStateMachine(check: .testing(interval: .seconds(2), startPeriod: .seconds(3), unhealthy: 1),
                                              launchedAt: clock.now, firstCheckAt: clock.now + .seconds(2))
        #expect(Self.run(&machine, [false, false], clock: &clock) == [nil, .becameUnhealthy(detail: "refused")])
    }

    @Test func checksStartOneIntervalApartAndNeverOverlap() {
        var clock = ManualClock()
        var machine = HealthCheckStateMachine(check: .testing(interval: .seconds(10), timeout: .seconds(4)),
                                              launchedAt: clock.now, firstCheckAt: clock.now + .seconds(10))
        #expect(!value(machine.tick(now: clock.now)))
        clock.advance(.seconds(10))
        let started = clock.now
        #expect(value(machine.tick(now: clock.now)))
        #expect(!value(machine.tick(now: clock.now + .seconds(20))))
        clock.advance(.seconds(3))
        _ = machine.completed(passed: true, detail: "", now: clock.now)
        #expect(machine.nextCheckAt == started + .seconds(10))
        // A check slower than the interval is followed at once.
        clock.now = started + .seconds(10)
        #expect(value(machine.tick(now: clock.now)))
        clock.advance(.seconds(12))
        _ = machine.completed(passed: true, detail: "", now: clock.now)
        #expect(machine.nextCheckAt == clock.now)
    }
}

@Suite struct ReadinessAndWatchdogStateMachineTests {
    @Test func execIsReadyAtLaunch() {
        var machine = ReadinessStateMachine(mode: .exec, launchedAt: ManualClock().now, timeout: .seconds(5))
        #expect(value(machine.launched()) == .becameReady)
        #expect(machine.deadline == nil)
    }

    @Test func healthIsReadyWhileHealthy() {
        var machine = ReadinessStateMachine(mode: .health, launchedAt: ManualClock().now, timeout: .seconds(5))
        #expect(value(machine.launched()) == nil)
        #expect(value(machine.healthChanged(healthy: true, detail: "ok")) == .becameReady)
        #expect(value(machine.healthChanged(healthy: false, detail: "HTTP 503")) == .becameNotReady(reason: "health check failing: HTTP 503"))
        #expect(value(machine.notifiedReady()) == nil)
        #expect(!machine.isReady)
    }

    @Test func notifyIsReadyAfterReadyAndAgainAfterAReload() {
        var clock = ManualClock()
        var machine = ReadinessStateMachine(mode: .notify, launchedAt: clock.now, timeout: .seconds(5))
        #expect(value(machine.launched()) == nil)
        #expect(!machine.isReady)
        #expect(value(machine.notifiedReady()) == .becameReady)
        #expect(value(machine.notifiedReloading()) == .becameNotReady(reason: "reloading"))
        #expect(machine.isReloading)
        #expect(value(machine.notifiedReady()) == .becameReady)
        #expect(!machine.isReloading)
        #expect(value(machine.notifiedStopping()) == .becameNotReady(reason: "stopping"))
        clock.advance(.seconds(60))
        #expect(!machine.hasTimedOut(now: clock.now), "the deadline ends with the first READY=1")
    }

    @Test func notifyTimesOutUnlessExtended() {
        var clock = ManualClock()
        let launched = clock.now
        var machine = ReadinessStateMachine(mode: .notify, launchedAt: launched, timeout: .seconds(5))
        clock.advance(.seconds(4))
        #expect(value(machine.extendDeadline(now: clock.now, by: .seconds(3))))
        #expect(machine.deadline == launched + .seconds(7))
        // An extension never shortens the deadline.
        #expect(value(machine.extendDeadline(now: clock.now, by: .seconds(1))))
        #expect(machine.deadline == launched + .seconds(7))
        clock.now = launched + .seconds(6)
        #expect(!machine.hasTimedOut(now: clock.now))
        clock.now = launched + .seconds(7)
        #expect(machine.hasTimedOut(now: clock.now))
    }

    @Test func watchdogPingsPushTheDeadline() {
        var clock = ManualClock()
        var watchdog = WatchdogStateMachine(timeout: .seconds(2), armedAt: clock.now)
        for _ in 0..<5 {
            clock.advance(.milliseconds(1500))
            #expect(!watchdog.hasFired(now: clock.now))
            watchdog.ping(now: clock.now)
        }
        clock.advance(.seconds(2))
        #expect(watchdog.hasFired(now: clock.now))
        watchdog.setTimeout(.seconds(10), now: clock.now)
        clock.advance(.seconds(9))
        #expect(!watchdog.hasFired(now: clock.now))
        watchdog.trigger(now: clock.now)
        #expect(watchdog.hasFired(now: clock.now))
    }

    @Test func notifyMessagesParseTheKeysActedOn() {
        let message = NotifyMessage(parsing: "READY=1\nSTATUS=serving 3 clients\nWATCHDOG=1\nEXTEND_TIMEOUT_USEC=2500000\nMAINPID=7\nbogus\nWATCHDOG_USEC=1000000")
        #expect(message.ready)
        #expect(message.status == "serving 3 clients")
        #expect(message.watchdog == .ping)
        #expect(message.extendTimeout == .milliseconds(2500))
        #expect(message.watchdogTimeout == .seconds(1))
        #expect(!message.reloading && !message.stopping)
        #expect(NotifyMessage(parsing: "WATCHDOG=trigger").watchdog == .trigger)
        #expect(NotifyMessage(parsing: "READY=0\nX=1").isEmpty)
        #expect(NotifyMessage(parsing: "STATUS=a=b").status == "a=b")
        // 0 and USEC_INFINITY turn the watchdog off (a zero timeout); garbage is skipped.
        #expect(NotifyMessage(parsing: "WATCHDOG_USEC=0").watchdogTimeout == .zero)
        #expect(NotifyMessage(parsing: "WATCHDOG_USEC=18446744073709551615").watchdogTimeout == .zero)
        #expect(NotifyMessage(parsing: "WATCHDOG_USEC=-5").watchdogTimeout == nil)
    }
}
