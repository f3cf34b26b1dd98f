/// One backend as a balancer sees it now: for metrics, logs and tests.
public struct BackendStatus: Hashable, Sendable {
    /// The backend, as last given.
    public var backend: Backend
    /// Requests picked and not yet finished.
    public var outstanding: Int
    /// Failures since the last success or return from ejection.
    public var consecutiveFailures: Int
    /// When its ejection ends; nil while it takes traffic normally.
    public var ejectedUntil: ContinuousClock.Instant?
    /// Ejections not yet forgiven: the multiplier of the next ejection's length, minus one.
    public var ejections: Int

    /// Whether it is ejected now.
    public var isEjected: Bool { ejectedUntil != nil }
}
