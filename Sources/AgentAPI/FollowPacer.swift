/// Paces the requests of a command that follows the cluster (`kv watch`, `events --follow`, a
/// rollout's progress). After a transient failure (the agent restarting, an election) it waits
/// 1 s, doubling up to 30 s, as `consul watch` does. After an answer that neither changed nor
/// used its wait (an agent shutting down ends every wait at once) it waits the same way before
/// asking again: asked again at once, such answers made a loop of requests as fast as the agent
/// could answer, for as long as it took to stop. Any other answer resets it.
public struct FollowPacer {
    public static let first = Duration.seconds(1)
    public static let last = Duration.seconds(30)

    /// The next pause.
    public private(set) var next = Self.first

    public init() {}

    /// After a transient failure: how long to wait before asking again.
    public mutating func afterFailure() -> Duration {
        defer {
            let doubled: Duration = next * 2
            next = doubled < Self.last ? doubled : Self.last
        }
        return next
    }

    /// An answer with nothing new that came back sooner than this (or than half its wait, if
    /// shorter) did not wait. Not the wait itself: an agent ends waits longer than its
    /// `--max-query-wait`, and such answers did wait.
    public static let quickAnswer = Duration.seconds(1)

    /// After an answer that took `elapsed`, asked to wait up to `wait` (nil: the agent's own
    /// limit): how long to wait before asking again (zero: at once). `changed`: it showed
    /// something new.
    public mutating func afterAnswer(changed: Bool, took elapsed: Duration, ofAWait wait: Duration? = nil) -> Duration {
        let quick = wait.map { $0 / 2 < Self.quickAnswer ? $0 / 2 : Self.quickAnswer } ?? Self.quickAnswer
        guard changed || elapsed >= quick else { return afterFailure() }
        next = Self.first
        return .zero
    }
}
