import Foundation
import Manifest
import Testing

@testable import Supervisor

/// The composed machine, driven through whole lives with a manual clock.
@Suite struct InstanceStateMachineTests {
    typealias Machine = InstanceStateMachine<SeededGenerator>

    static func machine(_ policy: SupervisionPolicy, seed: UInt64 = 1) -> Machine {
        Machine(policy: policy, random: SeededGenerator(seed: seed))
    }

    /// Moves the clock to the machine's next deadline and ticks.
    static func tickAtDeadline(_ machine: inout Machine, _ clock: inout ManualClock) -> [InstanceAction] {
        guard let deadline = machine.nextDeadline else { return [] }
        clock.now = max(clock.now, deadline)
        return machine.tick(now: clock.now)
    }

    @Test func aCrashLoopBacksOffThenFailsWithTheExitsReason() {
        let policy = SupervisionPolicy(restart: .testing(initial: .milliseconds(100), max: .milliseconds(400), maxRestarts: 3,
                                                         window: .seconds(60)))
        var machine = Self.machine(policy)
        var clock = ManualClock()
        #expect(value(machine.start(now: clock.now)) == [.launch])
        var launches: [BootInstant] = []
        while true {
            launches.append(clock.now)
            #expect(value(machine.launched(now: clock.now, detail: "pid 10")) == [.persist])
            #expect(machine.isReady)
            clock.advance(.milliseconds(5))
            _ = machine.exited(now: clock.now, reason: .exited(code: 2))
            if case .failed = machine.phase { break }
            guard case .backingOff(let until) = machine.phase else {
                Issue.record("expected backoff, got \(machine.phase)")
                return
            }
            // Nothing happens before the delay is up.
            #expect(value(machine.tick(now: until - .milliseconds(1))) == [])
            #expect(Self.tickAtDeadline(&machine, &clock) == [.launch])
        }
        #expect(launches.count == 4)
        let gaps = zip(launches, launches.dropFirst()).map { $1 - $0 - .milliseconds(5) }
        for (gap, base) in zip(gaps, [100, 200, 400].map { Duration.milliseconds($0) }) {
            #expect(gap <= base && gap >= base * 0.8)
        }
        guard case .failed(let reason) = machine.phase else { return }
        #expect(reason == "exited with status 2 after 3 restarts within 1m")
        let kinds = machine.takeEvents().map(\.kind)
        #expect(kinds.filter { $0 == .restartScheduled }.count == 3)
        #expect(kinds.last == .failed)
        #expect(machine.nextDeadline == nil)
    }

    @Test func zeroBackoffRestartsInTheSameStep() {
        var machine = Self.machine(SupervisionPolicy(restart: .testing(initial: .zero, max: .zero)))
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "")
        clock.advance(.milliseconds(1))
        #expect(value(machine.exited(now: clock.now, reason: .signaled(signal: 11))) == [.persist, .launch])
        #expect(machine.phase == .starting)
    }

    @Test func anUnhealthyInstanceIsStoppedAndRestartedForItsCheck() {
        let policy = SupervisionPolicy(restart: .testing(initial: .seconds(1)), health: .testing(interval: .seconds(1), unhealthy: 2),
                                       readiness: .health, stopSignal: 15, stopTimeout: .seconds(3))
        var machine = Self.machine(policy)
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "pid 1")
        #expect(!machine.isReady)
        #expect(Self.tickAtDeadline(&machine, &clock) == [.runHealthCheck(timeout: .seconds(2))])
        #expect(value(machine.healthCheckCompleted(now: clock.now, passed: true, detail: "HTTP 200")) == [.persist])
        #expect(machine.isReady)
        #expect(Self.tickAtDeadline(&machine, &clock) == [.runHealthCheck(timeout: .seconds(2))])
        #expect(value(machine.healthCheckCompleted(now: clock.now, passed: false, detail: "HTTP 500")) == [])
        #expect(machine.isReady)
        #expect(Self.tickAtDeadline(&machine, &clock) == [.runHealthCheck(timeout: .seconds(2))])
        #expect(value(machine.healthCheckCompleted(now: clock.now, passed: false, detail: "HTTP 500")) == [.signal(15), .persist])
        #expect(!machine.isReady)
        #expect(machine.phase == .stopping(cause: .unhealthy(detail: "HTTP 500")))
        // It ignores the signal: killed at the stop timeout, the kill naming the failed check (a
        // rollout waiting on the instance names its latest event).
        let signalled = clock.now
        #expect(Self.tickAtDeadline(&machine, &clock) == [.killCgroup])
        #expect(clock.now == signalled + .seconds(3))
        #expect(machine.takeEvents().last { $0.kind == .killed }?.reason
            == "failed health check: HTTP 500; still running 3s after the stop signal: killing its cgroup")
        _ = machine.exited(now: clock.now, reason: .signaled(signal: 9))
        #expect(machine.lastExit == .healthCheckFailed(detail: "HTTP 500"))
        guard case .backingOff = machine.phase else {
            Issue.record("expected a restart, got \(machine.phase)")
            return
        }
        let exited = machine.takeEvents().first { $0.kind == .exited }
        #expect(exited?.reason == "killed by signal 9 (SIGKILL), after the supervisor stopped it: failed health check: HTTP 500")
    }

    /// Checked every second, unhealthy at the first failure, stopped with SIGTERM after `drain`.
    static func drainingPolicy(_ drain: Duration) -> SupervisionPolicy {
        SupervisionPolicy(restart: .testing(initial: .seconds(1)), health: .testing(interval: .seconds(1), unhealthy: 1),
                          readiness: .health, stopSignal: 15, stopTimeout: .seconds(3), unhealthyDrain: drain)
    }

    @Test func anUnhealthyInstanceIsDrainedBeforeItsStopSignal() {
        let policy = Self.drainingPolicy(.seconds(2))
        var machine = Self.machine(policy)
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "pid 1")
        #expect(Self.tickAtDeadline(&machine, &clock) == [.runHealthCheck(timeout: .seconds(2))])
        _ = machine.healthCheckCompleted(now: clock.now, passed: true, detail: "HTTP 200")
        #expect(Self.tickAtDeadline(&machine, &clock) == [.runHealthCheck(timeout: .seconds(2))])
        // Unhealthy: reported at once (not ready, health unhealthy), still running, not checked.
        #expect(value(machine.healthCheckCompleted(now: clock.now, passed: false, detail: "HTTP 500")) == [.persist])
        #expect(!machine.isReady && machine.phase == .running && machine.health?.status == .unhealthy)
        let failed = clock.now
        #expect(machine.nextDeadline == failed + .seconds(2))
        // The stop signal comes at the end of the drain, with the check's reason.
        #expect(Self.tickAtDeadline(&machine, &clock) == [.signal(15), .persist])
        #expect(clock.now == failed + .seconds(2))
        #expect(machine.phase == .stopping(cause: .unhealthy(detail: "HTTP 500")))
        // Exiting by itself during a drain ends it like any exit.
        var again = Self.machine(policy)
        var other = ManualClock()
        _ = again.start(now: other.now)
        _ = again.launched(now: other.now, detail: "pid 1")
        _ = Self.tickAtDeadline(&again, &other)
        _ = again.healthCheckCompleted(now: other.now, passed: false, detail: "refused")
        #expect(again.unhealthyStop != nil)
        _ = again.exited(now: other.now, reason: .exited(code: 1))
        #expect(again.unhealthyStop == nil && again.lastExit == .exited(code: 1))
    }

    /// The agent restarts while an unhealthy instance drains: the adopted instance is still
    /// stopped at the end of the drain (checks have stopped, so nothing else would stop it).
    @Test func anUnhealthyInstanceAdoptedDuringItsDrainIsStillStopped() {
        let policy = Self.drainingPolicy(.seconds(5))
        var machine = Self.machine(policy)
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "pid 7")
        _ = Self.tickAtDeadline(&machine, &clock)
        _ = machine.healthCheckCompleted(now: clock.now, passed: false, detail: "HTTP 500")
        let failed = clock.now
        clock.advance(.seconds(1))
        var adopted = Machine(policy: policy, random: SeededGenerator(seed: 2), restoring: machine.snapshot)
        _ = adopted.adopt(now: clock.now, exit: nil, detail: "pid 7 still running", healthPhase: 0.5)
        #expect(adopted.nextDeadline == failed + .seconds(5))
        #expect(Self.tickAtDeadline(&adopted, &clock) == [.signal(15), .persist])
        #expect(adopted.phase == .stopping(cause: .unhealthy(detail: "HTTP 500")))
    }

    /// READY=1 sent right after execve can reach the machine before the launch's report (they
    /// come by different threads): it is kept, and the instance is ready once launched, not
    /// killed later as "not ready in time".
    @Test func aReadyNotificationBeforeTheLaunchReportCounts() {
        var machine = Self.machine(SupervisionPolicy(restart: .testing(.never), readiness: .notify, readinessTimeout: .seconds(10)))
        let clock = ManualClock()
        _ = machine.start(now: clock.now)
        var ready = NotifyMessage()
        ready.ready = true
        #expect(value(machine.notified(now: clock.now, message: ready)) == [])
        _ = machine.launched(now: clock.now, detail: "pid 7")
        #expect(machine.isReady)
    }

    /// A READY=1 the previous process sent just before it ended can be read after a zero-backoff
    /// restart has begun: from another cgroup than the new process's, it is refused, whether it
    /// arrives during the launch or after it, and the new process is ready only once it says so.
    @Test func aReadyNotificationOfThePreviousProcessDoesNotMakeTheNextOneReady() {
        var machine = Self.machine(SupervisionPolicy(restart: .testing(initial: .zero, max: .zero), readiness: .notify,
                                                     readinessTimeout: .seconds(10)))
        var clock = ManualClock()
        var ready = NotifyMessage()
        ready.ready = true
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "pid 7", cgroupID: 100)
        clock.advance(.milliseconds(1))
        #expect(value(machine.exited(now: clock.now, reason: .exited(code: 1))) == [.persist, .launch])
        // During the launch, then after it: both from the ended process's cgroup.
        _ = machine.notified(now: clock.now, message: ready, senderCgroup: 100)
        _ = machine.launched(now: clock.now, detail: "pid 8", cgroupID: 200)
        #expect(!machine.isReady)
        _ = machine.notified(now: clock.now, message: ready, senderCgroup: 100)
        #expect(!machine.isReady)
        let refused = value(machine.takeEvents()).filter { $0.kind == .notifyRefused }
        #expect(refused.count == 2 && refused.allSatisfy { $0.reason.contains("previous process") }, "\(refused)")
        _ = machine.notified(now: clock.now, message: ready, senderCgroup: 200)
        #expect(machine.isReady)
    }

    /// A stop asked for during a relaunch leaves the instance stopping with no process reported
    /// yet: messages read then wait for the launch's report, which tells the previous
    /// process's (refused: its STATUS= or EXTEND_TIMEOUT_USEC= would be taken as the new one's)
    /// from the new one's (taken: its EXTEND_TIMEOUT_USEC= extends the stop).
    @Test func messagesDuringAStoppedRelaunchWaitForTheLaunchToBeToldApart() {
        var machine = Self.machine(SupervisionPolicy(restart: .testing(initial: .zero, max: .zero), stopTimeout: .seconds(10)))
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "pid 7", cgroupID: 100)
        clock.advance(.milliseconds(1))
        _ = machine.exited(now: clock.now, reason: .exited(code: 1))
        _ = machine.stop(now: clock.now)
        #expect(machine.phase.isStopping)
        _ = machine.takeEvents()
        _ = machine.notified(now: clock.now, message: NotifyMessage(parsing: "STATUS=old"), senderCgroup: 100)
        _ = machine.notified(now: clock.now, message: NotifyMessage(parsing: "EXTEND_TIMEOUT_USEC=30000000"), senderCgroup: 200)
        #expect(value(machine.takeEvents()).isEmpty)
        #expect(value(machine.launched(now: clock.now, detail: "pid 8", cgroupID: 200)) == [.signal(15), .persist])
        let events = value(machine.takeEvents())
        #expect(events.contains { $0.kind == .notifyRefused && $0.reason.contains("previous process") }, "\(events)")
        #expect(!events.contains { $0.kind == .status }, "\(events)")
        #expect(events.contains { $0.kind == .timeoutExtended }, "\(events)")
        #expect(machine.killAt == clock.now + .seconds(30))
    }

    @Test func stoppingACrashLoopingInstanceCancelsItsPendingRestart() {
        var machine = Self.machine(SupervisionPolicy(restart: .testing(initial: .seconds(30))))
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "")
        _ = machine.exited(now: clock.now, reason: .exited(code: 1))
        guard case .backingOff = machine.phase else { return }
        #expect(value(machine.stop(now: clock.now)) == [.persist])
        #expect(machine.phase == .stopped)
        #expect(machine.nextDeadline == nil)
        clock.advance(.seconds(60))
        #expect(value(machine.tick(now: clock.now)) == [])
        #expect(value(machine.takeEvents()).map(\.kind).suffix(3) == [.stopRequested, .restartCancelled, .stopped])
    }

    @Test func stopSendsTheSignalThenKillsAndNeverRestarts() {
        var machine = Self.machine(SupervisionPolicy(stopSignal: 3, stopTimeout: .seconds(5)))
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "")
        #expect(value(machine.stop(now: clock.now)) == [.signal(3), .persist])
        clock.advance(.seconds(4))
        #expect(value(machine.tick(now: clock.now)) == [])
        #expect(Self.tickAtDeadline(&machine, &clock) == [.killCgroup])
        #expect(value(machine.exited(now: clock.now, reason: .signaled(signal: 9))) == [.persist])
        #expect(machine.phase == .stopped)
        // EXTEND_TIMEOUT_USEC during a stop pushes the kill out.
        var other = Self.machine(SupervisionPolicy(stopTimeout: .seconds(5)))
        _ = other.start(now: clock.now)
        _ = other.launched(now: clock.now, detail: "")
        _ = other.stop(now: clock.now)
        var extend = NotifyMessage()
        extend.extendTimeout = .seconds(20)
        _ = other.notified(now: clock.now, message: extend)
        #expect(other.killAt == clock.now + .seconds(20))
    }

    /// The longest stop timeout a manifest takes (`2562047h`, what systemd's `infinity` comes
    /// to) on a host up for more than 47 minutes: past the end of Int64 nanoseconds, the kill
    /// must be as late as can be, not wrapped into the past (which killed at once).
    @Test func anEndlessStopTimeoutNeverKills() {
        var machine = Self.machine(SupervisionPolicy(stopSignal: 15, stopTimeout: .seconds(2_562_047 * 3600)))
        var clock = ManualClock()
        clock.advance(.seconds(3600))
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "")
        #expect(value(machine.stop(now: clock.now)) == [.signal(15), .persist])
        #expect((machine.killAt ?? clock.now) > clock.now)
        clock.advance(.seconds(86_400))
        #expect(value(machine.tick(now: clock.now)) == [])
    }

    /// A stop signal the kernel drops kills at once; the timeout's kill does not come again, and
    /// outside a stop the input does nothing.
    @Test func aDiscardedStopSignalKillsWithoutWaiting() {
        var machine = Self.machine(SupervisionPolicy(stopSignal: 15, stopTimeout: .seconds(30)))
        let clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "")
        #expect(value(machine.stopSignalDiscarded(now: clock.now)) == [])
        #expect(machine.phase == .running)
        #expect(value(machine.stop(now: clock.now)) == [.signal(15), .persist])
        #expect(value(machine.stopSignalDiscarded(now: clock.now)) == [.killCgroup])
        #expect(machine.nextDeadline == nil)
        #expect(value(machine.stopSignalDiscarded(now: clock.now)) == [])
        let killed = value(machine.takeEvents()).last
        #expect(killed?.kind == .killed)
        #expect(killed?.reason == "SIGTERM is dropped by the kernel (pid 1 of the service's pid namespace has no "
            + "handler for it): killing its cgroup without waiting 30s")
        #expect(value(machine.exited(now: clock.now, reason: .signaled(signal: 9))) == [.persist])
        #expect(machine.phase == .stopped)
    }

    /// A failed cgroup kill is said once and tried again every second until the exit: before, it
    /// was swallowed and the stop waited for an exit that nothing would cause.
    @Test func aFailedKillIsRecordedOnceAndRetriedUntilTheExit() {
        var machine = Self.machine(SupervisionPolicy(stopSignal: 15, stopTimeout: .seconds(30)))
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "")
        #expect(value(machine.killFailed(now: clock.now, detail: "not stopping")) == [])
        #expect(machine.nextDeadline == nil)
        _ = machine.stop(now: clock.now)
        #expect(Self.tickAtDeadline(&machine, &clock) == [.killCgroup])
        _ = machine.takeEvents()
        let refused = "write \"/cg/cgroup.kill\": Read-only file system"
        #expect(value(machine.killFailed(now: clock.now, detail: refused)) == [.persist])
        #expect(machine.nextDeadline == clock.now + .seconds(1))
        #expect(value(machine.tick(now: clock.now + .milliseconds(999))) == [])
        #expect(Self.tickAtDeadline(&machine, &clock) == [.killCgroup])
        #expect(value(machine.killFailed(now: clock.now, detail: refused)) == [])
        #expect(Self.tickAtDeadline(&machine, &clock) == [.killCgroup])
        #expect(value(machine.killFailed(now: clock.now, detail: "open \"/cg/cgroup.procs\": Too many open files")) == [.persist])
        let events = value(machine.takeEvents())
        #expect(events.map(\.kind) == [.killFailed, .killFailed], "\(events)")
        #expect(events.first?.reason == refused + "; each process was sent SIGKILL instead, and the kill is tried again every 1s "
            + "until the instance exits")
        #expect(value(machine.exited(now: clock.now, reason: .signaled(signal: 9))) == [.persist])
        #expect(machine.phase == .stopped)
        #expect(machine.nextDeadline == nil)
        #expect(value(machine.killFailed(now: clock.now, detail: refused)) == [])
    }

    /// A timeout from WATCHDOG_USEC is persisted, so that the next agent arms it rather than the
    /// manifest's (before, it armed the manifest's 10 s and killed a service pinging every 30 s);
    /// WATCHDOG_USEC=0 turns the watchdog off, across an agent restart too.
    @Test func watchdogUsecIsPersistedAndZeroTurnsTheWatchdogOff() {
        let policy = SupervisionPolicy(watchdog: .seconds(10), stopTimeout: .seconds(1))
        var machine = Self.machine(policy)
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "")
        #expect(value(machine.notified(now: clock.now, message: NotifyMessage(parsing: "WATCHDOG_USEC=60000000"))) == [.persist])
        #expect(machine.snapshot.watchdogTimeout == .seconds(60))
        var restored = Machine(policy: policy, random: SeededGenerator(seed: 2), restoring: machine.snapshot)
        _ = restored.adopt(now: clock.now, exit: nil, detail: "", healthPhase: 0)
        #expect(restored.watchdog?.timeout == .seconds(60))

        #expect(value(machine.notified(now: clock.now, message: NotifyMessage(parsing: "WATCHDOG_USEC=0"))) == [.persist])
        #expect(machine.watchdog == nil)
        #expect(value(machine.takeEvents()).last?.kind == .watchdogDisarmed)
        clock.advance(.seconds(120))
        #expect(value(machine.tick(now: clock.now)) == [])
        #expect(machine.phase == .running)
        #expect(machine.snapshot.watchdogTimeout == nil && machine.snapshot.watchdogDisarmed == true)
        restored = Machine(policy: policy, random: SeededGenerator(seed: 2), restoring: machine.snapshot)
        _ = restored.adopt(now: clock.now, exit: nil, detail: "", healthPhase: 0)
        #expect(restored.watchdog == nil)
        // A new process starts with the manifest's watchdog again.
        _ = machine.exited(now: clock.now, reason: .exited(code: 1))
        if case .backingOff = machine.phase { _ = Self.tickAtDeadline(&machine, &clock) }
        _ = machine.launched(now: clock.now, detail: "")
        #expect(machine.watchdog?.timeout == .seconds(10))
    }

    @Test func aMissedWatchdogRestartsTheInstance() {
        let policy = SupervisionPolicy(restart: .testing(initial: .seconds(1)), watchdog: .seconds(2), stopTimeout: .seconds(1))
        var machine = Self.machine(policy)
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "")
        var ping = NotifyMessage()
        ping.watchdog = .ping
        for _ in 0..<4 {
            clock.advance(.milliseconds(1500))
            #expect(value(machine.tick(now: clock.now)) == [])
            _ = machine.notified(now: clock.now, message: ping)
        }
        #expect(Self.tickAtDeadline(&machine, &clock) == [.signal(15), .persist])
        _ = machine.exited(now: clock.now, reason: .exited(code: 0))
        #expect(machine.lastExit == .watchdogMissed)
        #expect(value(machine.takeEvents()).contains { $0.kind == .watchdogMissed && $0.reason == "no WATCHDOG=1 within 2s" })
        guard case .backingOff = machine.phase else {
            Issue.record("expected a restart")
            return
        }
    }

    @Test func aNotifyInstanceIsReadyOnlyAfterReadyAndFailsReadinessInTime() {
        let policy = SupervisionPolicy(restart: .testing(.never), readiness: .notify, readinessTimeout: .seconds(10))
        var machine = Self.machine(policy)
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "")
        #expect(!machine.isReady)
        var status = NotifyMessage()
        status.status = "warming up"
        _ = machine.notified(now: clock.now, message: status)
        #expect(!machine.isReady)
        #expect(machine.readiness?.statusText == "warming up")
        var extend = NotifyMessage()
        extend.extendTimeout = .seconds(30)
        clock.advance(.seconds(5))
        _ = machine.notified(now: clock.now, message: extend)
        clock.advance(.seconds(20))
        #expect(value(machine.tick(now: clock.now)) == [])
        #expect(Self.tickAtDeadline(&machine, &clock) == [.signal(15), .persist])
        _ = machine.exited(now: clock.now, reason: .exited(code: 0))
        #expect(machine.phase == .failed(reason: "not ready in time (no READY=1)"))

        var ready = Self.machine(policy)
        _ = ready.start(now: clock.now)
        _ = ready.launched(now: clock.now, detail: "")
        var message = NotifyMessage()
        message.ready = true
        #expect(value(ready.notified(now: clock.now, message: message)) == [.persist])
        #expect(ready.isReady)
        #expect(value(ready.takeEvents()).contains { $0.kind == .ready })
    }

    @Test func aSnapshotSurvivesEncodingAndTheProcessIsAdoptedWithoutARestart() throws {
        let policy = SupervisionPolicy(restart: .testing(initial: .milliseconds(1)), health: .testing(interval: .seconds(10)),
                                       readiness: .health)
        var machine = Self.machine(policy)
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        _ = machine.launched(now: clock.now, detail: "")
        _ = machine.exited(now: clock.now, reason: .exited(code: 1))
        _ = Self.tickAtDeadline(&machine, &clock)
        _ = machine.launched(now: clock.now, detail: "")
        _ = Self.tickAtDeadline(&machine, &clock)
        _ = machine.healthCheckCompleted(now: clock.now, passed: true, detail: "ok")
        let data = try JSONEncoder().encode(machine.snapshot)
        let snapshot = try JSONDecoder().decode(InstanceSnapshot.self, from: data)
        #expect(snapshot == machine.snapshot)

        clock.advance(.seconds(3))
        var adopted = Machine(policy: policy, random: SeededGenerator(seed: 2), restoring: snapshot)
        #expect(value(adopted.adopt(now: clock.now, exit: nil, detail: "pid 7 still running", healthPhase: 0.5)) == [.persist])
        #expect(adopted.phase == .running)
        #expect(adopted.isReady)
        #expect(adopted.health?.status == .healthy)
        #expect(adopted.restart.restartCount == 1)
        #expect(adopted.launchCount == 2)
        #expect(adopted.health?.nextCheckAt == clock.now + .seconds(5))
        #expect(value(adopted.takeEvents()).map(\.kind) == [.adopted])

        var lost = Machine(policy: policy, random: SeededGenerator(seed: 2), restoring: snapshot)
        let actions = lost.adopt(now: clock.now, exit: .unknown(detail: "exit status unknown"), detail: "pid 7 is gone",
                                 healthPhase: 0)
        #expect(actions == [.persist])
        #expect(lost.restart.restartCount == 2)
        #expect(value(lost.takeEvents()).map(\.kind) == [.lostWhileDown, .exited, .restartScheduled])
    }

    /// Random inputs, many seeds: the machine never asks for a launch while a process is
    /// running or stopping, and an ended instance never acts again.
    @Test(arguments: 0..<40)
    func randomInputsKeepTheInvariants(seed: UInt64) {
        var random = SeededGenerator(seed: seed &* 7919)
        let policy = SupervisionPolicy(
            restart: .testing(initial: .milliseconds(10), max: .seconds(1), maxRestarts: 20, window: .seconds(30)),
            health: .testing(interval: .milliseconds(300), unhealthy: 2), readiness: .notify, watchdog: .seconds(1),
            stopTimeout: .milliseconds(200), readinessTimeout: .seconds(2))
        var machine = Self.machine(policy, seed: seed)
        var clock = ManualClock()
        var running = false
        var checking = false
        _ = machine.start(now: clock.now)
        var pendingLaunch = true
        var ended: InstancePhase?
        for _ in 0..<400 {
            clock.advance(.milliseconds(Int64.random(in: 1...400, using: &random)))
            var actions: [InstanceAction] = []
            switch Int.random(in: 0..<10, using: &random) {
            case 0 where pendingLaunch:
                pendingLaunch = false
                running = true
                actions = machine.launched(now: clock.now, detail: "")
            case 1 where running:
                running = false
                checking = false
                actions = machine.exited(now: clock.now, reason: Bool.random(using: &random) ? .exited(code: 1) : .oomKilled)
            case 2 where checking:
                checking = false
                actions = machine.healthCheckCompleted(now: clock.now, passed: Bool.random(using: &random), detail: "")
            case 3 where running:
                var message = NotifyMessage()
                message.ready = Bool.random(using: &random)
                message.watchdog = .ping
                actions = machine.notified(now: clock.now, message: message)
            case 4 where Int.random(in: 0..<20, using: &random) == 0:
                actions = machine.stop(now: clock.now)
            default:
                actions = machine.tick(now: clock.now)
            }
            for action in actions {
                switch action {
                case .launch:
                    #expect(!running && !pendingLaunch, "launch while a process exists")
                    pendingLaunch = true
                case .runHealthCheck:
                    #expect(running && !checking)
                    checking = true
                case .signal, .killCgroup:
                    #expect(running || pendingLaunch)
                case .persist:
                    break
                }
            }
            // An ended instance never acts again: no launch, signal, kill or check, whatever comes
            // in, and it stays in the phase it ended in (the driver drops it once it has ended).
            if let ended {
                #expect(actions.allSatisfy { $0 == .persist }, "seed \(seed): \(actions) after ending \(ended)")
                #expect(machine.phase == ended, "seed \(seed): \(machine.phase) after ending \(ended)")
            } else if !machine.phase.isActive {
                #expect(!running && !pendingLaunch, "seed \(seed): ended \(machine.phase) with a process")
                ended = machine.phase
            }
            if !machine.phase.isActive {
                #expect(machine.nextDeadline == nil)
            }
            _ = machine.takeEvents()
        }
    }
}
