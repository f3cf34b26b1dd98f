import Manifest

/// Whether a running instance is ready for traffic, by the manifest's mode: `exec` as soon as it
/// runs, `health` while its health check says healthy, `notify` from `READY=1` on (and again after
/// `RELOADING=1` once the next `READY=1` comes; `STOPPING=1` ends it). A `notify` instance must
/// be ready by a deadline, which `EXTEND_TIMEOUT_USEC` pushes out (systemd's TimeoutStartSec).
public struct ReadinessStateMachine: Sendable, Hashable {
    /// A change of readiness.
    public enum Transition: Sendable, Hashable {
        case becameReady
        case becameNotReady(reason: String)
    }

    /// The manifest's mode.
    public let mode: ReadinessMode
    /// Ready now.
    public private(set) var isReady: Bool
    /// Between `RELOADING=1` and the next `READY=1`.
    public private(set) var isReloading: Bool
    /// The last `STATUS=` text.
    public private(set) var statusText: String?
    /// `notify` only, before the first `READY=1`: when the instance must be ready by.
    public private(set) var deadline: BootInstant?

    /// A machine for a process launched at `launchedAt`; `timeout` is how long a `notify`
    /// instance has to become ready.
    public init(mode: ReadinessMode, launchedAt: BootInstant, timeout: Duration) {
        self.mode = mode
        isReady = false
        isReloading = false
        deadline = mode == .notify ? launchedAt + timeout : nil
    }

    /// A persisted machine (after an agent restart).
    public init(mode: ReadinessMode, isReady: Bool, isReloading: Bool, statusText: String?, deadline: BootInstant?) {
        self.mode = mode
        self.isReady = isReady
        self.isReloading = isReloading
        self.statusText = statusText
        self.deadline = deadline
    }

    /// The process runs (execve done).
    public mutating func launched() -> Transition? {
        mode == .exec ? setReady(true, reason: "") : nil
    }

    /// The health check's status changed.
    public mutating func healthChanged(healthy: Bool, detail: String) -> Transition? {
        guard mode == .health else { return nil }
        return setReady(healthy, reason: "health check failing: \(detail)")
    }

    /// `READY=1`.
    public mutating func notifiedReady() -> Transition? {
        isReloading = false
        guard mode == .notify else { return nil }
        deadline = nil
        return setReady(true, reason: "")
    }

    /// `RELOADING=1`.
    public mutating func notifiedReloading() -> Transition? {
        guard mode == .notify else { return nil }
        isReloading = true
        return setReady(false, reason: "reloading")
    }

    /// `STOPPING=1`: the service is on its way out.
    public mutating func notifiedStopping() -> Transition? {
        setReady(false, reason: "stopping")
    }

    /// `STATUS=…`.
    public mutating func notifiedStatus(_ text: String) {
        statusText = text
    }

    /// `EXTEND_TIMEOUT_USEC=…` at `now`: the deadline becomes at least `now + extension`.
    /// Returns whether a deadline was extended.
    public mutating func extendDeadline(now: BootInstant, by extension: Duration) -> Bool {
        guard let current = deadline else { return false }
        deadline = max(current, now + `extension`)
        return true
    }

    /// Whether the readiness deadline has passed at `now` without `READY=1`.
    public func hasTimedOut(now: BootInstant) -> Bool {
        guard let deadline, !isReady else { return false }
        return now >= deadline
    }

    private mutating func setReady(_ ready: Bool, reason: String) -> Transition? {
        guard ready != isReady else { return nil }
        isReady = ready
        return ready ? .becameReady : .becameNotReady(reason: reason)
    }
}
