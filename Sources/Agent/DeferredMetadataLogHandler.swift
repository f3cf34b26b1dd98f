import Logging

/// Keeps the metadata set on a logger and hands it to the handler it wraps only when a record
/// is written.
///
/// Hummingbird gives every request a logger with its own `hb.request.id`; swift-log's
/// `StreamLogHandler` renders its whole metadata as text each time metadata is set, so every
/// API request paid for formatting a line that, at the agent's usual levels, is never written.
/// Records come out as before: `StreamLogHandler` renders explicit metadata the same way
/// (sorted, `key=value`), with a record's own metadata over the logger's.
struct DeferredMetadataLogHandler: LogHandler {
    private var wrapped: any LogHandler
    var metadata: Logger.Metadata = [:]

    init(wrapping wrapped: any LogHandler) { self.wrapped = wrapped }

    var logLevel: Logger.Level {
        get { wrapped.logLevel }
        set { wrapped.logLevel = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { wrapped.metadataProvider }
        set { wrapped.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var event = event
        if !metadata.isEmpty { event.metadata = metadata.merging(event.metadata ?? [:]) { _, explicit in explicit } }
        wrapped.log(event: event)
    }
}
