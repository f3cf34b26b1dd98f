/// What of an instance's state survives an agent restart: written atomically to the state
/// directory on every `persist` action, read back by the next agent.
public struct InstanceSnapshot: Sendable, Hashable, Codable {
    public var phase: InstancePhase
    public var launchedAt: BootInstant?
    public var killAt: BootInstant?
    public var launchCount: Int
    public var lastExit: ExitReason?
    public var restartTimes: [BootInstant]
    public var consecutiveRestarts: Int
    public var restartCount: Int
    public var healthStatus: HealthCheckStateMachine.Status?
    public var healthPasses: Int
    public var healthFailures: Int
    public var ready: Bool
    public var reloading: Bool
    public var statusText: String?
    public var readinessDeadline: BootInstant?
    public var watchdogTimeout: Duration?
    /// The service turned its watchdog off (`WATCHDOG_USEC=0`); `watchdogTimeout` is then nil.
    /// A field of its own, not a zero timeout: an older agent reads a zero timeout as a watchdog
    /// that fires at once. (Absent from older snapshots: decoded as nil.)
    public var watchdogDisarmed: Bool?
    /// A stop pending at the end of an unhealthy instance's drain: when, and the failed check.
    /// (Absent from snapshots of agents before it was kept: decoded as nil.)
    public var unhealthyStopAt: BootInstant?
    public var unhealthyStopDetail: String?
}

extension InstanceStateMachine {
    /// The state to persist.
    public var snapshot: InstanceSnapshot {
        InstanceSnapshot(
            phase: phase, launchedAt: launchedAt, killAt: killAt, launchCount: launchCount, lastExit: lastExit,
            restartTimes: restart.restartTimes, consecutiveRestarts: restart.consecutiveRestarts,
            restartCount: restart.restartCount, healthStatus: health?.status, healthPasses: health?.consecutivePasses ?? 0,
            healthFailures: health?.consecutiveFailures ?? 0, ready: readiness?.isReady ?? false,
            reloading: readiness?.isReloading ?? false, statusText: readiness?.statusText,
            readinessDeadline: readiness?.deadline, watchdogTimeout: watchdog?.timeout, watchdogDisarmed: watchdogTurnedOff ? true : nil, unhealthyStopAt: unhealthyStop?.at,
            unhealthyStopDetail: unhealthyStop?.detail)
    }

    /// A machine restored from what a previous agent persisted. Nothing runs until `adopt`.
    public init(policy: SupervisionPolicy, random: Random, restoring snapshot: InstanceSnapshot) {
        self.init(policy: policy, random: random)
        restore(snapshot)
    }

    /// Takes over after an agent restart, at `now`. `exit` is nil when the process recorded in
    /// the state directory still runs (it is adopted as it is: no restart is counted), else how
    /// it ended while no supervisor watched (then the restart policy decides, as for any exit).
    /// `cgroupID`: the adopted process's cgroup id, where known.
    public mutating func adopt(now: BootInstant, exit: ExitReason?, detail: String, healthPhase: Double,
                               cgroupID: UInt64? = nil) -> [InstanceAction] {
        processCgroup = exit == nil ? ProcessCgroup(cgroupID) : .noProcess
        switch phase {
        case .running, .stopping:
            if let exit {
                recordEvent(now, .lostWhileDown, "\(detail): \(exit)")
                return exited(now: now, reason: exit)
            }
            recordEvent(now, .adopted, detail)
            if phase == .running { resumeRunning(now: now, healthPhase: healthPhase) }
            return [.persist]
        case .starting:
            // The previous agent died during a launch; whatever it started was cleaned up by the
            // caller (its cgroup is killed), so launch again.
            recordEvent(now, .lostWhileDown, "the previous agent stopped during a launch")
            return [.launch]
        case .idle, .backingOff, .stopped, .failed, .completed:
            return []
        }
    }
}
