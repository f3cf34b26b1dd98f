import Manifest

/// Decides what follows an exit under a service's restart policy: a restart after a backoff
/// delay, *failed*, or *completed*. Pure: time comes in as arguments, jitter from an injected
/// generator (Nomad's restart tracker reads the wall clock and global randomness; this does not).
///
/// * Backoff: the n-th restart since the last stable run waits `initialDelay × 2ⁿ`, capped at
///   `maxDelay`, less up to `jitterFraction` of it at random (so a node's crashed instances do not
///   all come back in the same instant), never less than `initialDelay`.
/// * Stable run: a process that ran `resetAfter` or longer starts the backoff again from
///   `initialDelay`.
/// * Window: `maxRestarts` restarts are allowed within any `window`; an exit that would need one
///   more makes the instance *failed*, with the exit's reason.
public struct RestartPolicyStateMachine<Random: RandomNumberGenerator>: Sendable where Random: Sendable {
    /// What follows an exit.
    public enum Decision: Sendable, Hashable {
        /// Launch again at `at`, `delay` after the exit.
        case restart(at: BootInstant, delay: Duration)
        /// Give up: the instance is failed, for `reason`.
        case fail(reason: String)
        /// The instance has done its work (`never` or `on-failure` after a clean exit).
        case complete
    }

    /// The manifest's policy.
    public let policy: RestartPolicy
    /// The share of a delay that jitter may take off, from 0 to 1.
    public let jitterFraction: Double
    /// When each restart within the window happens (or is due).
    public private(set) var restartTimes: [BootInstant]
    /// Restarts since the last stable run: the backoff's exponent.
    public private(set) var consecutiveRestarts: Int
    /// Restarts over the instance's whole life.
    public private(set) var restartCount: Int
    private var random: Random

    /// The generator, to carry into a restored machine.
    var generator: Random { random }

    /// A fresh machine; `restartTimes`, `consecutiveRestarts` and `restartCount` restore a
    /// persisted one (after an agent restart).
    public init(policy: RestartPolicy, random: Random, jitterFraction: Double = 0.2,
                restartTimes: [BootInstant] = [], consecutiveRestarts: Int = 0, restartCount: Int = 0)
    {
        self.policy = policy
        self.random = random
        self.jitterFraction = min(max(jitterFraction, 0), 1)
        self.restartTimes = restartTimes
        self.consecutiveRestarts = consecutiveRestarts
        self.restartCount = restartCount
    }

    /// The process that started at `startedAt` (nil: never started, e.g. a failed launch) ended
    /// at `now` for `reason`.
    public mutating func decide(after reason: ExitReason, startedAt: BootInstant?, now: BootInstant) -> Decision {
        if let startedAt, now - startedAt >= policy.resetAfter { consecutiveRestarts = 0 }
        switch policy.policy {
        case .never:
            return reason.isSuccess ? .complete : .fail(reason: reason.description)
        case .onFailure where reason.isSuccess:
            return .complete
        case .onFailure, .always:
            break
        }
        // Sliding window: restarts at or before now - window no longer count.
        let window = policy.window
        restartTimes.removeAll { now - $0 >= window }
        if restartTimes.count >= policy.maxRestarts {
            let within = restartTimes.count == 1 ? "1 restart" : "\(restartTimes.count) restarts"
            return .fail(reason: "\(reason) after \(within) within \(DurationText.formatRounded(policy.window))")
        }
        let delay = backoffDelay(forRestart: consecutiveRestarts)
        consecutiveRestarts += 1
        restartCount += 1
        restartTimes.append(now + delay)
        return .restart(at: now + delay, delay: delay)
    }

    /// The delay before restart number `n` (0-based) since the last stable run.
    mutating func backoffDelay(forRestart n: Int) -> Duration {
        var base = policy.initialDelay
        for _ in 0..<min(n, 62) where base < policy.maxDelay {
            base = base * 2
        }
        base = min(base, policy.maxDelay)
        guard base > .zero, jitterFraction > 0 else { return base }
        let cut = Double.random(in: 0..<1, using: &random) * jitterFraction
        return max(base * (1 - cut), min(policy.initialDelay, base))
    }
}
