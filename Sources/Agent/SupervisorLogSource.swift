import AgentAPI
import BlockingWork
import Supervisor

/// Instance output from this node's supervisor: its log files for a tail, its capture for
/// following.
struct SupervisorLogSource: InstanceLogSource {
    let supervisor: NodeSupervisor

    private func log(_ instance: String) throws(APIError) -> InstanceLog {
        guard let supervised = supervisor.instance(instance) else {
            throw APIError(code: APIErrorCode.instanceNotFound, message: "instance \"\(instance)\" is not running on this node; its output is kept where it ran")
        }
        return supervised.log
    }

    func tail(instance: String, lines: Int?, since: Int64?) async throws(APIError) -> [AgentAPI.LogLine] {
        let log = try log(instance)
        do {
            // Up to every kept file (50 MiB by default): read off Swift's pool.
            let all: [CapturedLine] = try await BlockingWork.run { try lines.map { try log.reader.tail($0) } ?? log.reader.lines() }
            return all.filter { line in since.map { line.timestampNanoseconds / 1_000_000 >= $0 } ?? true }.map(Self.wire)
        } catch {
            throw APIError(code: APIErrorCode.internalError, message: "could not read the log of \(instance): \(error)")
        }
    }

    func follow(instance: String, lines: Int?, since: Int64?) async throws(APIError) -> AsyncThrowingStream<AgentAPI.LogLine, any Error> {
        let source = try log(instance).follow(tail: lines ?? 10)
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    for try await line in source where since.map({ line.timestampNanoseconds / 1_000_000 >= $0 }) ?? true {
                        continuation.yield(Self.wire(line))
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    static func wire(_ line: CapturedLine) -> AgentAPI.LogLine {
        AgentAPI.LogLine(time: line.timestampNanoseconds / 1_000_000, stream: line.stream == .stderr ? .stderr : .stdout, text: line.text)
    }
}
