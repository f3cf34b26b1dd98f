import Foundation
import Manifest
import Testing

@testable import Supervisor

/// What the events of an instance say, read as an operator reads them: times relative to the
/// event, durations written as a manifest writes them, never the boot clock or Swift's
/// `Duration` description.
@Suite struct InstanceEventTextTests {
    typealias Machine = InstanceStateMachine<SeededGenerator>

    /// Every event of a life with a health check, two crashes, a watchdog and a stop.
    static func eventsOfABusyLife() -> [InstanceEvent] {
        let policy = SupervisionPolicy(
            restart: .testing(initial: .milliseconds(180), max: .seconds(1), maxRestarts: 2, window: .seconds(600)),
            health: .testing(interval: .seconds(5), startPeriod: .seconds(30)), readiness: .health, watchdog: .seconds(90),
            stopSignal: 15, stopTimeout: .seconds(10))
        var machine = Machine(policy: policy, random: SeededGenerator(seed: 3))
        var clock = ManualClock()
        _ = machine.start(now: clock.now)
        for pid in 10..<12 {
            _ = machine.launched(now: clock.now, detail: "pid \(pid)")
            clock.advance(.milliseconds(1234))
            _ = machine.exited(now: clock.now, reason: .exited(code: 2))
            if case .backingOff(let until) = machine.phase { clock.now = until }
            _ = machine.tick(now: clock.now)
        }
        _ = machine.launched(now: clock.now, detail: "pid 12")
        var watchdog = NotifyMessage()
        watchdog.watchdogTimeout = .microseconds(2_500_000)
        _ = machine.notified(now: clock.now, message: watchdog)
        _ = machine.stop(now: clock.now)
        clock.advance(.seconds(10))
        _ = machine.tick(now: clock.now)
        _ = machine.exited(now: clock.now, reason: .signaled(signal: 9))
        return machine.takeEvents()
    }

    @Test func theFirstHealthCheckIsSaidRelativeToTheEvent() throws {
        let events = Self.eventsOfABusyLife()
        let starting = try #require(events.first { $0.kind == .healthStarting })
        #expect(starting.reason == "first check in 5s; failures in the first 30s do not count")
        var plain = Machine(policy: SupervisionPolicy(health: .testing(interval: .milliseconds(1500))), random: SeededGenerator(seed: 1))
        _ = plain.start(now: ManualClock().now)
        _ = plain.launched(now: ManualClock().now, detail: "")
        #expect(plain.takeEvents().first { $0.kind == .healthStarting }?.reason == "first check in 1.5s")
    }

    @Test func durationsAreWrittenAsAManifestWritesThem() throws {
        let events = Self.eventsOfABusyLife()
        let restarts = events.filter { $0.kind == .restartScheduled }.map(\.reason)
        try #require(restarts.count == 2)
        #expect(restarts[0] == "restart 1 in 180ms after: exited with status 2")
        // Jitter takes up to a fifth off 360ms, to the attosecond: rounded to the millisecond.
        #expect(restarts[1].wholeMatch(of: /restart 2 in (2[89][0-9]|3[0-5][0-9]|360)ms after: exited with status 2/) != nil, "\(restarts[1])")
        #expect(events.first { $0.kind == .watchdogArmed }?.reason == "timeout 1m30s")
        #expect(events.last { $0.kind == .watchdogArmed }?.reason == "timeout 2.5s (WATCHDOG_USEC)")
        #expect(events.first { $0.kind == .stopSignalSent }?.reason == "SIGTERM; the cgroup is killed after 10s")
        #expect(events.first { $0.kind == .killed }?.reason == "still running 10s after the stop signal: killing its cgroup")
    }

    @Test func noEventShowsTheBootClockOrARawDuration() {
        for event in Self.eventsOfABusyLife() {
            #expect(!event.reason.contains("boot+"), "\(event.kind): \(event.reason)")
            #expect(!event.reason.contains("seconds"), "\(event.kind): \(event.reason)")
        }
    }

    /// An event kind from a later agent decodes as `unrecognized`, its time and reason kept, so
    /// that a downgraded agent still reads the state file and adopts the instance.
    @Test func anUnknownKindFromALaterAgentStillDecodes() throws {
        let known = InstanceEvent(at: BootInstant(nanosecondsSinceBoot: 5), kind: .killFailed, reason: "EROFS")
        let encoded = String(decoding: try JSONEncoder().encode(known), as: UTF8.self)
        #expect(encoded.contains("\"killFailed\""))
        let later = Data(encoded.replacingOccurrences(of: "\"killFailed\"", with: "\"someKindOfTomorrow\"").utf8)
        let decoded = try JSONDecoder().decode(InstanceEvent.self, from: later)
        #expect(decoded.kind == .unrecognized)
        #expect(decoded.reason == "EROFS" && decoded.at == known.at)
        #expect(try JSONDecoder().decode(InstanceEvent.self, from: Data(encoded.utf8)) == known)
    }
}
