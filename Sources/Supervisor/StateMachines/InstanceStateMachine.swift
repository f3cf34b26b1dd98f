import Manifest

/// The life of one supervised instance, composed of its restart policy, health check, readiness
/// and watchdog machines. Pure (swift-nio's `…StateMachine` shape): each input — a launch done, an
/// exit, a check result, a notify message, a stop request, the clock reaching `nextDeadline` —
/// returns the actions a driver must carry out, and records events with their time and reason.
/// Time comes in as arguments and jitter from the injected generator, so tests never sleep.
public struct InstanceStateMachine<Random: RandomNumberGenerator & Sendable>: Sendable {
    /// The policy.
    public let policy: SupervisionPolicy
    /// The phase.
    public private(set) var phase: InstancePhase = .idle
    /// The restart policy's machine (restart history and backoff).
    public private(set) var restart: RestartPolicyStateMachine<Random>
    /// Health, while running with a health check.
    public private(set) var health: HealthCheckStateMachine?
    /// Readiness, while running.
    public private(set) var readiness: ReadinessStateMachine?
    /// The watchdog, while running with one.
    public private(set) var watchdog: WatchdogStateMachine?
    /// The running process turned its watchdog off (`WATCHDOG_USEC=0`): kept across an agent
    /// restart, where the manifest's watchdog would otherwise be armed again.
    private(set) var watchdogTurnedOff = false
    /// When the current process was launched.
    public private(set) var launchedAt: BootInstant?
    /// While stopping: when the cgroup is killed (again, after a failed kill).
    public private(set) var killAt: BootInstant?
    /// While stopping after a cgroup kill failed: its error, for telling a new one from a repeat.
    private var killFailure: String?
    /// After a failed health check, with `policy.unhealthyDrain`: when the stop signal is sent,
    /// and why. The instance runs on meanwhile, unhealthy and unchecked.
    public private(set) var unhealthyStop: (at: BootInstant, detail: String)?
    /// Notifications that arrived while the launch was under way, for `launched`, with their
    /// sender's cgroup id where known.
    private var notifiedWhileStarting: [(message: NotifyMessage, senderCgroup: UInt64?)] = []
    /// The cgroup of the running process: a message from another cgroup of this instance is one
    /// its previous process sent before it ended, read after the restart that followed (`notified`).
    var processCgroup: ProcessCgroup = .unknown

    /// What is known of the running process's cgroup.
    enum ProcessCgroup: Sendable, Equatable {
        /// Not known (cgroup v1 only, an adoption without a cgroup2 directory; a machine not yet
        /// started): messages are not told apart by cgroup.
        case unknown
        /// No process has been reported launched since the last one ended.
        case noProcess
        case id(UInt64)

        init(_ id: UInt64?) {
            self = id.map { .id($0) } ?? .unknown
        }
    }
    /// Processes launched over the instance's life (adoptions do not count).
    public private(set) var launchCount = 0
    /// The last exit's reason.
    public private(set) var lastExit: ExitReason?
    private var events: [InstanceEvent] = []
    private var restoredSnapshot: InstanceSnapshot?

    /// A machine for an instance not started yet.
    public init(policy: SupervisionPolicy, random: Random) {
        self.policy = policy
        restart = RestartPolicyStateMachine(policy: policy.restart, random: random)
    }

    /// Events recorded since the last call, oldest first.
    public mutating func takeEvents() -> [InstanceEvent] {
        defer { events = [] }
        return events
    }

    /// Whether the instance is ready for traffic now.
    public var isReady: Bool {
        phase == .running && readiness?.isReady == true
    }

    /// The next instant `tick` has work at; nil: none until another input.
    public var nextDeadline: BootInstant? {
        switch phase {
        case .backingOff(let until): return until
        case .stopping: return killAt
        case .running:
            if let unhealthyStop { return unhealthyStop.at }
            var deadlines: [BootInstant] = []
            if let next = health?.nextDeadline { deadlines.append(next) }
            if let readiness, !readiness.isReady, let deadline = readiness.deadline { deadlines.append(deadline) }
            if let watchdog { deadlines.append(watchdog.deadline) }
            return deadlines.min()
        case .idle, .starting, .stopped, .failed, .completed:
            return nil
        }
    }

    // MARK: - Inputs

    /// Start the instance for the first time.
    public mutating func start(now: BootInstant) -> [InstanceAction] {
        guard phase == .idle else { return [] }
        phase = .starting
        return [.launch]
    }

    /// The launch asked for succeeded (`detail`: e.g. the pid), in the cgroup of id `cgroupID`.
    public mutating func launched(now: BootInstant, detail: String, cgroupID: UInt64? = nil) -> [InstanceAction] {
        launchCount += 1
        processCgroup = ProcessCgroup(cgroupID)
        launchedAt = now
        record(now, .launched, detail)
        if case .stopping(.requested) = phase {
            killAt = now + policy.stopTimeout
            record(now, .stopSignalSent, "stop was requested during the launch")
            replayNotifiedDuringLaunch(now: now)
            return [.signal(policy.stopSignal), .persist]
        }
        phase = .running
        beginRunning(now: now)
        replayNotifiedDuringLaunch(now: now)
        return [.persist]
    }

    /// The messages kept while the launch was under way, judged now that the process's cgroup
    /// is known.
    private mutating func replayNotifiedDuringLaunch(now: BootInstant) {
        let early = notifiedWhileStarting
        notifiedWhileStarting = []
        for (message, sender) in early { _ = notified(now: now, message: message, senderCgroup: sender) }
    }

    /// How many notifications are kept while a launch is under way (a service sends a few).
    static var notificationsKeptWhileStarting: Int { 16 }

    /// The launch asked for failed.
    public mutating func launchFailed(now: BootInstant, message: String) -> [InstanceAction] {
        notifiedWhileStarting = []
        processCgroup = .noProcess
        record(now, .launchFailed, message)
        launchedAt = nil
        if case .stopping(.requested) = phase {
            phase = .stopped
            record(now, .stopped, "stopped before it could start")
            return [.persist]
        }
        return afterEnd(.launchFailed(message: message), startedAt: nil, now: now)
    }

    /// The process ended at `now` for `reason` (its cgroup is empty and gone).
    public mutating func exited(now: BootInstant, reason: ExitReason) -> [InstanceAction] {
        guard phase == .running || phase == .starting || phase.isStopping else { return [] }
        let cause = phase.stopCause
        let effective = cause?.exitReason ?? reason
        let stoppedBySupervisor = cause.map { $0 != .requested } ?? false
        record(now, .exited, stoppedBySupervisor ? "\(reason), after the supervisor stopped it: \(effective)" : "\(reason)")
        endRunning()
        processCgroup = .noProcess
        killAt = nil
        killFailure = nil
        lastExit = effective
        if cause == .requested {
            phase = .stopped
            record(now, .stopped, "\(reason)")
            return [.persist]
        }
        return afterEnd(effective, startedAt: launchedAt, now: now)
    }

    /// A health check that `tick` asked for ended.
    public mutating func healthCheckCompleted(now: BootInstant, passed: Bool, detail: String) -> [InstanceAction] {
        guard phase == .running, unhealthyStop == nil, var machine = health, machine.runningSince != nil else { return [] }
        let transition = machine.completed(passed: passed, detail: detail, now: now)
        health = machine
        switch transition {
        case .becameHealthy:
            record(now, .healthy, detail)
            noteReadiness(readiness?.healthChanged(healthy: true, detail: detail), now: now)
            return [.persist]
        case .becameUnhealthy(let why):
            // Worded as the exit it leads to: a rollout waiting on the instance names the
            // failed check whether the instance is still draining or already restarting.
            record(now, .unhealthy, ExitReason.healthCheckFailed(detail: why).description)
            noteReadiness(readiness?.healthChanged(healthy: false, detail: why), now: now)
            // Requests in flight, and clients that have not yet heard of the deregistration,
            // get the drain delay before the stop signal, as when the cluster stops it.
            guard policy.unhealthyDrain > .zero else { return beginSupervisorStop(.unhealthy(detail: why), now: now) }
            unhealthyStop = (now + policy.unhealthyDrain, why)
            return [.persist]
        case nil:
            return []
        }
    }

    /// An sd_notify message from the instance's own cgroup, of id `senderCgroup` where known.
    public mutating func notified(now: BootInstant, message: NotifyMessage, senderCgroup: UInt64? = nil) -> [InstanceAction] {
        // A service may notify right after its execve, before the launch's own report has
        // reached this machine (the two travel by different threads): kept for `launched`.
        // Likewise while a stop asked for during the launch waits for it to be reported.
        if phase == .starting || (phase.isStopping && processCgroup == .noProcess) {
            if notifiedWhileStarting.count < Self.notificationsKeptWhileStarting { notifiedWhileStarting.append((message, senderCgroup)) }
            return []
        }
        // Sent by the previous process just before it ended (its READY=1 would make the new one
        // ready before it said so): read after the restart, its cgroup is no longer the current.
        if let senderCgroup, case .id(let current) = processCgroup, current != senderCgroup {
            record(now, .notifyRefused, "from the instance's previous process (cgroup id \(senderCgroup)), not the running one (cgroup id \(current))")
            return []
        }
        guard phase == .running || phase.isStopping else { return [] }
        var changed = false
        if let text = message.status {
            readiness?.notifiedStatus(text)
            record(now, .status, text)
            changed = true
        }
        if message.reloading {
            record(now, .reloading, "")
            noteReadiness(readiness?.notifiedReloading(), now: now)
            changed = true
        }
        if message.ready, phase == .running {
            noteReadiness(readiness?.notifiedReady(), now: now)
            changed = true
        }
        if message.stopping {
            record(now, .stopping, "the service said it is stopping")
            noteReadiness(readiness?.notifiedStopping(), now: now)
            changed = true
        }
        if let timeout = message.watchdogTimeout, phase == .running {
            if timeout == .zero {
                if watchdog != nil { record(now, .watchdogDisarmed, "WATCHDOG_USEC=0") }
                watchdog = nil
                watchdogTurnedOff = true
            } else {
                if watchdog == nil {
                    watchdog = WatchdogStateMachine(timeout: timeout, armedAt: now)
                } else {
                    watchdog?.setTimeout(timeout, now: now)
                }
                watchdogTurnedOff = false
                record(now, .watchdogArmed, "timeout \(DurationText.formatRounded(timeout)) (WATCHDOG_USEC)")
            }
            // Persisted: the next agent arms the timeout the service asked for, not the manifest's.
            changed = true
        }
        switch message.watchdog {
        case .ping: watchdog?.ping(now: now)
        case .trigger: watchdog?.trigger(now: now)
        case nil: break
        }
        if let extra = message.extendTimeout {
            if phase.isStopping, let current = killAt {
                killAt = max(current, now + extra)
                record(now, .timeoutExtended, "stop timeout extended by \(DurationText.formatRounded(extra))")
                changed = true
            } else if readiness?.extendDeadline(now: now, by: extra) == true {
                record(now, .timeoutExtended, "readiness timeout extended by \(DurationText.formatRounded(extra))")
                changed = true
            }
        }
        return changed ? [.persist] : []
    }

    /// A notify message was refused (its sender is not in the instance's cgroup).
    public mutating func notifyRefused(now: BootInstant, detail: String) {
        record(now, .notifyRefused, detail)
    }

    /// The ports of an adopted process could not be published again (bound by someone else
    /// while no agent ran); the process keeps running, unreachable from the node.
    public mutating func publishFailed(now: BootInstant, detail: String) {
        record(now, .publishFailed, detail)
    }

    /// Stop the instance for good: stop signal, then the cgroup is killed after `stopTimeout`;
    /// a pending restart is cancelled.
    public mutating func stop(now: BootInstant) -> [InstanceAction] {
        switch phase {
        case .running:
            record(now, .stopRequested, "")
            phase = .stopping(cause: .requested)
            killAt = now + policy.stopTimeout
            endRunning()
            record(now, .stopSignalSent, "\(ExitReason.signalName(policy.stopSignal)); the cgroup is killed after \(DurationText.formatRounded(policy.stopTimeout))")
            return [.signal(policy.stopSignal), .persist]
        case .stopping(let cause):
            record(now, .stopRequested, "")
            if cause != .requested { phase = .stopping(cause: .requested) }
            return [.persist]
        case .starting:
            record(now, .stopRequested, "")
            phase = .stopping(cause: .requested)
            return [.persist]
        case .backingOff:
            record(now, .stopRequested, "")
            record(now, .restartCancelled, "the pending restart is cancelled")
            phase = .stopped
            record(now, .stopped, "")
            return [.persist]
        case .idle:
            phase = .stopped
            record(now, .stopped, "never started")
            return [.persist]
        case .stopped, .failed, .completed:
            return []
        }
    }

    /// The stop signal just sent will be dropped by the kernel (the main process is its pid
    /// namespace's init and has no handler for it): kill the cgroup now instead of after the
    /// stop timeout.
    public mutating func stopSignalDiscarded(now: BootInstant) -> [InstanceAction] {
        guard case .stopping = phase, killAt != nil else { return [] }
        killAt = nil
        record(now, .killed, killReason("\(ExitReason.signalName(policy.stopSignal)) is dropped by the kernel (pid 1 of the service's pid "
            + "namespace has no handler for it): killing its cgroup without waiting \(DurationText.formatRounded(policy.stopTimeout))"))
        return [.killCgroup]
    }

    /// How long after a failed cgroup kill it is tried again.
    public static var killRetryDelay: Duration { .seconds(1) }

    /// The cgroup kill failed (`detail`: the error: cgroup.kill or the freezer refused the write,
    /// the supervisor out of descriptors). The driver has sent SIGKILL to each process it could
    /// list and to the main process instead, which ends a pid-namespace init and so its whole
    /// namespace; the kill is tried again after `killRetryDelay` for as long as the instance has
    /// not exited (a process forked between listing and killing, an error that passes). Without
    /// this a stop would wait for an exit that no signal is coming to cause. A repeat of the same
    /// error is not recorded again.
    public mutating func killFailed(now: BootInstant, detail: String) -> [InstanceAction] {
        guard phase.isStopping else { return [] }
        let recorded = detail != killFailure
        if recorded {
            record(now, .killFailed, "\(detail); each process was sent SIGKILL instead, and the kill is tried again every "
                + DurationText.formatRounded(Self.killRetryDelay) + " until the instance exits")
        }
        killFailure = detail
        killAt = now + Self.killRetryDelay
        return recorded ? [.persist] : []
    }

    /// The clock reached `now` (at or after `nextDeadline`).
    public mutating func tick(now: BootInstant) -> [InstanceAction] {
        switch phase {
        case .backingOff(let until) where now >= until:
            phase = .starting
            return [.launch]
        case .stopping:
            guard let deadline = killAt, now >= deadline else { return [] }
            killAt = nil
            // A retry after a failed kill: `killFailed` said so already.
            if killFailure == nil {
                record(now, .killed, killReason("still running \(DurationText.formatRounded(policy.stopTimeout)) after the stop signal: killing its cgroup"))
            }
            return [.killCgroup]
        case .running:
            if let unhealthyStop {
                guard now >= unhealthyStop.at else { return [] }
                return beginSupervisorStop(.unhealthy(detail: unhealthyStop.detail), now: now)
            }
            if readiness?.hasTimedOut(now: now) == true {
                return beginSupervisorStop(.readinessTimeout, now: now)
            }
            if let watchdog, watchdog.hasFired(now: now) {
                record(now, .watchdogMissed, "no WATCHDOG=1 within \(DurationText.formatRounded(watchdog.timeout))")
                return beginSupervisorStop(.watchdog, now: now)
            }
            if var machine = health, machine.tick(now: now) {
                health = machine
                return [.runHealthCheck(timeout: machine.check.timeout)]
            }
            return []
        default:
            return []
        }
    }

    // MARK: - Steps

    private mutating func beginRunning(now: BootInstant) {
        if let check = policy.health {
            health = HealthCheckStateMachine(check: check, launchedAt: now, firstCheckAt: now + check.interval)
            record(now, .healthStarting, Self.healthStartingReason(check))
        }
        readiness = ReadinessStateMachine(mode: policy.readiness, launchedAt: now, timeout: policy.readinessTimeout)
        noteReadiness(readiness?.launched(), now: now)
        if let timeout = policy.watchdog {
            watchdog = WatchdogStateMachine(timeout: timeout, armedAt: now)
            record(now, .watchdogArmed, "timeout \(DurationText.formatRounded(timeout))")
        }
    }

    /// When the first check comes, said relative to the event (its time is the event's own):
    /// the boot clock the machine runs on means nothing to a reader.
    static func healthStartingReason(_ check: HealthCheck) -> String {
        let first = "first check in \(DurationText.formatRounded(check.interval))"
        guard check.startPeriod > .zero else { return first }
        return first + "; failures in the first \(DurationText.formatRounded(check.startPeriod)) do not count"
    }

    private mutating func endRunning() {
        unhealthyStop = nil
        health = nil
        watchdog = nil
        watchdogTurnedOff = false
        readiness = nil
    }

    private mutating func beginSupervisorStop(_ cause: InstanceStopCause, now: BootInstant) -> [InstanceAction] {
        phase = .stopping(cause: cause)
        killAt = now + policy.stopTimeout
        if readiness?.isReady == true { record(now, .notReady, "stopping: \(cause.exitReason?.description ?? "")") }
        endRunning()
        record(now, .stopSignalSent, "\(cause.exitReason?.description ?? "stop"): \(ExitReason.signalName(policy.stopSignal))")
        return [.signal(policy.stopSignal), .persist]
    }

    private mutating func afterEnd(_ reason: ExitReason, startedAt: BootInstant?, now: BootInstant) -> [InstanceAction] {
        switch restart.decide(after: reason, startedAt: startedAt, now: now) {
        case .restart(let at, let delay):
            record(now, .restartScheduled, "restart \(restart.restartCount) in \(DurationText.formatRounded(delay)) after: \(reason)")
            if at <= now {
                phase = .starting
                return [.persist, .launch]
            }
            phase = .backingOff(until: at)
            return [.persist]
        case .fail(let why):
            phase = .failed(reason: why)
            record(now, .failed, why)
            return [.persist]
        case .complete:
            phase = .completed
            record(now, .completed, "\(reason)")
            return [.persist]
        }
    }

    private mutating func noteReadiness(_ transition: ReadinessStateMachine.Transition?, now: BootInstant) {
        switch transition {
        case .becameReady: record(now, .ready, readiness.map { "readiness: \($0.mode.rawValue)" } ?? "")
        case .becameNotReady(let reason): record(now, .notReady, reason)
        case nil: break
        }
    }

    /// A kill's reason, after the cause of the stop when the supervisor stopped it (a failed
    /// check, a missed watchdog): the kill is the latest event, and a rollout waiting on the
    /// instance names that event, which must say why, not only how.
    private func killReason(_ how: String) -> String {
        guard let cause = phase.stopCause?.exitReason else { return how }
        return "\(cause.description); \(how)"
    }

    private mutating func record(_ at: BootInstant, _ kind: InstanceEvent.Kind, _ reason: String) {
        events.append(InstanceEvent(at: at, kind: kind, reason: reason))
    }

    // MARK: - Restoring (InstanceStateMachine+Snapshot.swift)

    mutating func recordEvent(_ at: BootInstant, _ kind: InstanceEvent.Kind, _ reason: String) {
        record(at, kind, reason)
    }

    mutating func restore(_ snapshot: InstanceSnapshot) {
        phase = snapshot.phase
        launchedAt = snapshot.launchedAt
        killAt = snapshot.killAt
        launchCount = snapshot.launchCount
        lastExit = snapshot.lastExit
        restart = RestartPolicyStateMachine(
            policy: policy.restart, random: restart.generator, restartTimes: snapshot.restartTimes,
            consecutiveRestarts: snapshot.consecutiveRestarts, restartCount: snapshot.restartCount)
        restoredSnapshot = snapshot
    }

    /// Health resumes where it was, its first check spread over one interval (`healthPhase`, 0..<1)
    /// so that a thousand adopted instances are not all checked at once; the watchdog is armed
    /// afresh (pings sent while no agent listened were lost).
    mutating func resumeRunning(now: BootInstant, healthPhase: Double) {
        let snapshot = restoredSnapshot
        if let check = policy.health {
            health = HealthCheckStateMachine(
                check: check, launchedAt: launchedAt ?? now, firstCheckAt: now + check.interval * min(max(healthPhase, 0), 1),
                status: snapshot?.healthStatus ?? .starting, consecutivePasses: snapshot?.healthPasses ?? 0,
                consecutiveFailures: snapshot?.healthFailures ?? 0)
        }
        readiness = ReadinessStateMachine(
            mode: policy.readiness, isReady: snapshot?.ready ?? false, isReloading: snapshot?.reloading ?? false,
            statusText: snapshot?.statusText, deadline: snapshot?.readinessDeadline)
        if snapshot?.watchdogDisarmed == true {
            watchdogTurnedOff = true
        } else if let timeout = snapshot?.watchdogTimeout ?? policy.watchdog {
            watchdog = WatchdogStateMachine(timeout: timeout, armedAt: now)
        }
        // An unhealthy instance was draining towards its stop: the stop stays due (no further
        // check could bring it about, as checks stop once the instance is unhealthy). A
        // snapshot from before the stop was kept has the status only: the drain is over.
        if snapshot?.healthStatus == .unhealthy {
            unhealthyStop = (snapshot?.unhealthyStopAt ?? now, snapshot?.unhealthyStopDetail ?? "unhealthy when the agent restarted")
        }
    }
}

extension InstancePhase {
    var isStopping: Bool {
        if case .stopping = self { return true }
        return false
    }

    var stopCause: InstanceStopCause? {
        if case .stopping(let cause) = self { return cause }
        return nil
    }
}

/// Where the instance is in its life.
public enum InstancePhase: Sendable, Hashable, Codable {
    /// Not started yet.
    case idle
    /// A launch was asked for and has not finished.
    case starting
    /// The process runs.
    case running
    /// The stop signal was sent; the cgroup is killed at `killAt` if it has not exited.
    case stopping(cause: InstanceStopCause)
    /// Exited; launched again at `until`.
    case backingOff(until: BootInstant)
    /// Stopped on request: never restarted.
    case stopped
    /// Given up on: too many restarts, or `never` after a failure.
    case failed(reason: String)
    /// Ended its work (`never` or `on-failure` after a clean exit).
    case completed

    /// Whether the instance holds a process or is about to (no end reached).
    public var isActive: Bool {
        switch self {
        case .starting, .running, .stopping, .backingOff: return true
        case .idle, .stopped, .failed, .completed: return false
        }
    }
}

/// Why the supervisor is stopping the process.
public enum InstanceStopCause: Sendable, Hashable, Codable {
    /// Someone asked: the instance ends *stopped*.
    case requested
    /// Its health check failed: the restart policy decides what follows.
    case unhealthy(detail: String)
    /// It missed its watchdog.
    case watchdog
    /// It sent no `READY=1` in time.
    case readinessTimeout

    /// The exit reason the restart policy sees.
    var exitReason: ExitReason? {
        switch self {
        case .requested: return nil
        case .unhealthy(let detail): return .healthCheckFailed(detail: detail)
        case .watchdog: return .watchdogMissed
        case .readinessTimeout: return .readinessTimeout
        }
    }
}

/// What the driver must do.
public enum InstanceAction: Sendable, Hashable {
    /// Launch the process, then report `launched` or `launchFailed`.
    case launch
    /// Send this signal to the main process.
    case signal(Int32)
    /// Kill every process in the instance's cgroup.
    case killCgroup
    /// Run the health probe with this timeout, then report `healthCheckCompleted`.
    case runHealthCheck(timeout: Duration)
    /// Write the state (`snapshot`) to disk: it changed in a way an agent restart must keep.
    case persist
}

