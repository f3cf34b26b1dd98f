/// The sd_notify watchdog of one instance: it must send `WATCHDOG=1` at least every `timeout`
/// (it reads the value from `WATCHDOG_USEC`), or it counts as hung. `WATCHDOG=trigger` fires at
/// once, `WATCHDOG_USEC=` changes the timeout (both as in systemd).
public struct WatchdogStateMachine: Sendable, Hashable {
    /// The current timeout.
    public private(set) var timeout: Duration
    /// When it fires unless pinged.
    public private(set) var deadline: BootInstant

    /// A watchdog armed at `armedAt`.
    public init(timeout: Duration, armedAt: BootInstant) {
        self.timeout = timeout
        deadline = armedAt + timeout
    }

    /// `WATCHDOG=1` at `now`.
    public mutating func ping(now: BootInstant) {
        deadline = now + timeout
    }

    /// `WATCHDOG=trigger`: fire now.
    public mutating func trigger(now: BootInstant) {
        deadline = now
    }

    /// `WATCHDOG_USEC=` at `now`: a new timeout, counted from now.
    public mutating func setTimeout(_ newTimeout: Duration, now: BootInstant) {
        timeout = newTimeout
        deadline = now + newTimeout
    }

    /// Whether it has fired at `now`.
    public func hasFired(now: BootInstant) -> Bool {
        now >= deadline
    }
}
