import Logging
import Synchronization

/// Records what is logged, by logger label, so that a test can check what an operator reads:
/// the message, and the `reason` and `what` metadata when they are given.
public struct RecordingLogHandler: LogHandler {
    public static let lines = Mutex<[String: [String]]>([:])
    public let label: String
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .debug

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let details = ["reason", "what"].compactMap { event.metadata?[$0].map { " \($0)" } }.joined()
        Self.lines.withLock { $0[label, default: []].append("\(event.level) \(event.message)\(details)") }
    }

    /// A logger whose lines `lines(of:)` answers; each test uses its own label.
    public static func logger(_ label: String) -> Logger {
        Logger(label: label) { RecordingLogHandler(label: $0) }
    }

    public static func lines(of label: String) -> [String] { lines.withLock { $0[label] ?? [] } }
}
