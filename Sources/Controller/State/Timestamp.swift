/// A point in wall-clock time, as the proposer of a log entry saw it.
///
/// The state machine never reads a clock: every replica must compute the same state from the
/// same entries, so the time an entry happened travels inside it (see ``ControllerEntry``).
public struct Timestamp: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var unixMilliseconds: Int64

    /// The time `unixMilliseconds` after the Unix epoch.
    public init(unixMilliseconds: Int64) {
        self.unixMilliseconds = unixMilliseconds
    }

    /// The epoch itself; what "never" compares as.
    public static let zero = Timestamp(unixMilliseconds: 0)

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.unixMilliseconds < rhs.unixMilliseconds
    }

    /// This time moved by `duration` (truncated to whole milliseconds).
    public func adding(_ duration: Duration) -> Timestamp {
        Timestamp(unixMilliseconds: unixMilliseconds + duration.wholeMilliseconds)
    }

    /// How long after `earlier` this time is (negative when it is before).
    public func duration(since earlier: Timestamp) -> Duration {
        .milliseconds(unixMilliseconds - earlier.unixMilliseconds)
    }

    public var description: String { "\(unixMilliseconds)ms" }

    public init(from decoder: any Decoder) throws {
        unixMilliseconds = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(unixMilliseconds)
    }
}

extension Duration {
    /// The whole milliseconds in this duration, rounded toward zero.
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
    }
}
