import Manifest

/// Health of one running instance from its probe's results: *starting* until `healthyThreshold`
/// passes in a row make it *healthy*; `unhealthyThreshold` failures in a row make it *unhealthy*,
/// and as many passes make it healthy again. Failures within `startPeriod` of the launch do not
/// count while the instance has not yet been healthy (Docker's start period), but they do end a
/// run of passes. Pure: the driver runs the probe when
/// `tick` says so and reports the result.
public struct HealthCheckStateMachine: Sendable, Hashable {
    /// The three states of an instance's health.
    public enum Status: String, Sendable, Hashable, Codable {
        case starting, healthy, unhealthy
    }

    /// A change of status.
    public enum Transition: Sendable, Hashable {
        case becameHealthy
        case becameUnhealthy(detail: String)
    }

    /// The manifest's check.
    public let check: HealthCheck
    /// When the process was launched (start of the start period).
    public let launchedAt: BootInstant
    /// The current status.
    public private(set) var status: Status
    /// Passes in a row.
    public private(set) var consecutivePasses: Int
    /// Failures in a row (those that count).
    public private(set) var consecutiveFailures: Int
    /// When the next check starts; nil while one runs.
    public private(set) var nextCheckAt: BootInstant?
    /// When the running check started.
    public private(set) var runningSince: BootInstant?

    /// A machine for a process launched at `launchedAt` whose first check is at `firstCheckAt`.
    /// `status` and the counters restore a persisted machine (after an agent restart).
    public init(check: HealthCheck, launchedAt: BootInstant, firstCheckAt: BootInstant,
                status: Status = .starting, consecutivePasses: Int = 0, consecutiveFailures: Int = 0)
    {
        self.check = check
        self.launchedAt = launchedAt
        self.status = status
        self.consecutivePasses = consecutivePasses
        self.consecutiveFailures = consecutiveFailures
        nextCheckAt = firstCheckAt
    }

    /// The next instant `tick` has work at.
    public var nextDeadline: BootInstant? {
        nextCheckAt
    }

    /// Whether a check should start now; if so, it is running until `completed`.
    public mutating func tick(now: BootInstant) -> Bool {
        guard runningSince == nil, let next = nextCheckAt, now >= next else { return false }
        runningSince = now
        nextCheckAt = nil
        return true
    }

    /// The running check passed or failed (`detail` says how) at `now`.
    public mutating func completed(passed: Bool, detail: String, now: BootInstant) -> Transition? {
        let startedAt = runningSince ?? now
        runningSince = nil
        // `interval` is the time between the starts of two checks; a slow check is followed at once.
        nextCheckAt = max(startedAt + check.interval, now)
        if passed {
            consecutiveFailures = 0
            consecutivePasses += 1
            if status != .healthy, consecutivePasses >= check.healthyThreshold {
                status = .healthy
                return .becameHealthy
            }
            return nil
        }
        // Passes must be in a row, whether or not the failure between them counts.
        consecutivePasses = 0
        if status == .starting, startedAt - launchedAt < check.startPeriod { return nil }
        consecutiveFailures += 1
        if status != .unhealthy, consecutiveFailures >= check.unhealthyThreshold {
            status = .unhealthy
            return .becameUnhealthy(detail: detail)
        }
        return nil
    }
}
