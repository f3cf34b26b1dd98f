import AgentAPI

/// Where the API reads an instance's output: the node that runs it keeps its log files.
public protocol InstanceLogSource: Sendable {
    /// The last `lines` lines (all, when nil) written at or after `since` (Unix ms).
    func tail(instance: String, lines: Int?, since: Int64?) async throws(APIError) -> [LogLine]
    /// Lines as they are written, after the `lines` most recent ones.
    func follow(instance: String, lines: Int?, since: Int64?) async throws(APIError) -> AsyncThrowingStream<LogLine, any Error>
}
