/// One sd_notify datagram: newline-separated `KEY=VALUE` assignments (sd_notify(3)). Only the
/// keys the supervisor acts on are kept; others (MAINPID=, ERRNO=, FDSTORE=…) are ignored, as
/// systemd ignores keys it does not know.
public struct NotifyMessage: Sendable, Hashable {
    /// `READY=1`.
    public var ready = false
    /// `RELOADING=1`.
    public var reloading = false
    /// `STOPPING=1`.
    public var stopping = false
    /// `STATUS=…`.
    public var status: String?
    /// `WATCHDOG=1` (ping) or `WATCHDOG=trigger`.
    public var watchdog: Watchdog?
    /// `WATCHDOG_USEC=…`: a new watchdog timeout.
    public var watchdogTimeout: Duration?
    /// `EXTEND_TIMEOUT_USEC=…`.
    public var extendTimeout: Duration?

    /// The two meanings of `WATCHDOG=`.
    public enum Watchdog: Sendable, Hashable {
        case ping, trigger
    }

    /// An empty message.
    public init() {}

    /// Parses a datagram's text. Unknown keys and malformed lines are skipped.
    public init(parsing text: String) {
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals]
            let value = line[line.index(after: equals)...]
            switch key {
            case "READY": ready = value == "1"
            case "RELOADING": reloading = value == "1"
            case "STOPPING": stopping = value == "1"
            case "STATUS": status = String(value)
            case "WATCHDOG":
                if value == "1" { watchdog = .ping } else if value == "trigger" { watchdog = .trigger }
            case "WATCHDOG_USEC":
                // 0 and UINT64_MAX (USEC_INFINITY) turn the watchdog off, as in systemd.
                if let micros = UInt64(value) { watchdogTimeout = micros == 0 || micros == .max ? .zero : .microseconds(micros) }
            case "EXTEND_TIMEOUT_USEC":
                if let micros = Int64(value), micros > 0 { extendTimeout = .microseconds(micros) }
            default:
                continue
            }
        }
    }

    /// Whether it carries anything the supervisor acts on.
    public var isEmpty: Bool {
        self == NotifyMessage()
    }
}
