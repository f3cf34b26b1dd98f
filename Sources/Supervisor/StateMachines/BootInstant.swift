import Glibc

/// A point in time on CLOCK_BOOTTIME: nanoseconds since the host booted. Every process of one
/// boot reads the same clock, so instants written to the state directory by one agent mean the
/// same to the next (a pending restart's time, the restart window), and the clock never jumps.
public struct BootInstant: Comparable, Hashable, Sendable, Codable, CustomStringConvertible {
    /// Nanoseconds since boot.
    public var nanosecondsSinceBoot: Int64

    /// An instant from its nanoseconds since boot.
    public init(nanosecondsSinceBoot: Int64) {
        self.nanosecondsSinceBoot = nanosecondsSinceBoot
    }

    /// Now.
    public static func now() -> BootInstant {
        BootInstant(nanosecondsSinceBoot: Self.read(CLOCK_BOOTTIME))
    }

    /// The same instant on the wall clock (CLOCK_REALTIME), in nanoseconds since the Unix epoch,
    /// for people reading events and log lines.
    public var wallClockNanoseconds: Int64 {
        Self.read(CLOCK_REALTIME) - (Self.read(CLOCK_BOOTTIME) - nanosecondsSinceBoot)
    }

    public static func < (lhs: BootInstant, rhs: BootInstant) -> Bool {
        lhs.nanosecondsSinceBoot < rhs.nanosecondsSinceBoot
    }

    /// Saturating: a duration past the end of Int64 (the longest a manifest takes, `2562047h`,
    /// for systemd's `infinity`) gives the latest instant, not one in the past.
    public static func + (lhs: BootInstant, rhs: Duration) -> BootInstant {
        BootInstant(nanosecondsSinceBoot: saturating(lhs.nanosecondsSinceBoot.addingReportingOverflow(rhs.nanosecondsClamped), sign: rhs))
    }

    /// Saturating, as `+`.
    public static func - (lhs: BootInstant, rhs: Duration) -> BootInstant {
        BootInstant(nanosecondsSinceBoot: saturating(lhs.nanosecondsSinceBoot.subtractingReportingOverflow(rhs.nanosecondsClamped), sign: .zero - rhs))
    }

    /// The result, or the end of Int64 on the side `sign` moved towards.
    private static func saturating(_ result: (partialValue: Int64, overflow: Bool), sign: Duration) -> Int64 {
        guard result.overflow else { return result.partialValue }
        return sign < .zero ? .min : .max
    }

    public static func - (lhs: BootInstant, rhs: BootInstant) -> Duration {
        .nanoseconds(lhs.nanosecondsSinceBoot &- rhs.nanosecondsSinceBoot)
    }

    public var description: String {
        let seconds = Double(nanosecondsSinceBoot) / 1e9
        return "boot+\(seconds)s"
    }

    static func read(_ clock: clockid_t) -> Int64 {
        var time = timespec()
        clock_gettime(clock, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to Int64.
    var nanosecondsClamped: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product.addingReportingOverflow(attoseconds / 1_000_000_000).overflow
            ? .max : product + attoseconds / 1_000_000_000
    }

    /// Whole milliseconds, clamped to Int32 (poll and epoll timeouts).
    var millisecondsClamped: Int32 {
        Int32(clamping: nanosecondsClamped / 1_000_000)
    }
}
