import Manifest
import Supervisor

/// A clock the tests move by hand: state machines take time as an argument, so nothing sleeps.
struct ManualClock {
    var now = BootInstant(nanosecondsSinceBoot: 1_000_000_000_000)

    mutating func advance(_ duration: Duration) {
        now = now + duration
    }
}

extension RestartPolicy {
    /// A policy for tests.
    static func testing(_ kind: RestartPolicyKind = .always, initial: Duration = .seconds(1), max: Duration = .seconds(16),
                        resetAfter: Duration = .seconds(60), maxRestarts: Int = 100, window: Duration = .seconds(600))
        -> RestartPolicy
    {
        RestartPolicy(policy: kind, initialDelay: initial, maxDelay: max, resetAfter: resetAfter, maxRestarts: maxRestarts,
                      window: window)
    }
}

extension HealthCheck {
    /// A TCP check with the given timing and thresholds.
    static func testing(interval: Duration = .seconds(10), timeout: Duration = .seconds(2), startPeriod: Duration = .zero,
                        healthy: Int = 1, unhealthy: Int = 3) -> HealthCheck
    {
        HealthCheck(probe: .tcp(TCPCheck(port: "http")), interval: interval, timeout: timeout, startPeriod: startPeriod,
                    healthyThreshold: healthy, unhealthyThreshold: unhealthy)
    }
}

/// Evaluates a mutating call outside #expect's decomposition (which would call it on a copy).
func value<T>(_ value: T) -> T {
    value
}
