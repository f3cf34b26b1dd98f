import Controller
import HTTPTypes
import Hummingbird
import NIOCore
import OpenAPIRuntime
import Raft
import Synchronization

/// The last answer of each read that is a function of the replicated state and the node's view
/// of the Raft group alone (`GET /v1/status`), as the generated code wrote it, kept with what it
/// was computed from. Dashboards and `deployctl status -w` ask the same question many times
/// between changes; the answer is written once per change instead of once per request, as the
/// Kubernetes API server keeps its objects encoded for its watchers. Encoding the answer was a
/// third of the agent's time under `wrk` (issue 12's figure).
///
/// Only plain requests are answered from it: no query (a blocking query waits, `?consistent`
/// confirms leadership first) and the same `Accept` lines as the request that filled it (the
/// generated code refuses what it cannot serve).
final class StateAnswerCache: Sendable {
    /// What an answer was computed from: every change of the state moves `index` (blocking
    /// queries rely on the same), and the answer also shows the leader and the term.
    struct Source: Equatable, Sendable {
        var index: UInt64
        var leader: NodeID
        var term: UInt64

        init(_ state: ClusterState, _ raft: RaftStatus) {
            index = state.lastChangeIndex
            leader = raft.softState.leader
            term = raft.hardState.term
        }
    }

    /// Filled by the operation's read (``APIHandler/blockingReadWithRaftStatus``) in the same
    /// visit to the Raft node as its answer, so that the answer is kept under what it was
    /// computed from and not under what was current before or after it.
    final class Observed: Sendable {
        private let value = Mutex<Source?>(nil)
        var source: Source? { value.withLock { $0 } }
        func record(_ source: Source) { value.withLock { $0 = source } }
    }

    @TaskLocal static var observed: Observed?

    /// The routes answered from the cache (method and document path).
    static let paths: Set<String> = ["GET /v1/status"]

    private struct Answer {
        var source: Source
        var accept: [String]
        var head: HTTPResponse
        var body: ByteBuffer
    }

    private let gateway: ClusterGateway
    private let answers = Mutex<[String: Answer]>([:])

    init(gateway: ClusterGateway) {
        self.gateway = gateway
    }

    static func caches(method: HTTPRequest.Method, path: String) -> Bool {
        paths.contains("\(method) \(path)")
    }

    /// The kept answer to `request` at `path` if the state it was computed from is still the
    /// local replica's; otherwise runs `compute` (the generated operation), keeps a successful
    /// answer and returns it.
    func answer(
        _ request: Request, path: String, compute: @Sendable () async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> Response {
        guard request.uri.query?.isEmpty ?? true else {
            let (head, body) = try await compute()
            return try await APIAnswer.response(head, body: body)
        }
        // Every Accept line, as the generated code reads them all.
        let accept = request.headers[values: .accept]
        let current = try await gateway.readWithRaftStatus { state, raft in Source(state, raft) }
        if let kept = answers.withLock({ $0[path] }), kept.source == current, kept.accept == accept {
            return APIAnswer.response(kept.head, whole: kept.body)
        }
        let observed = Observed()
        let (head, body) = try await Self.$observed.withValue(observed) { try await compute() }
        guard head.status == .ok, let source = observed.source, let body, let whole = try await APIAnswer.whole(body) else {
            return try await APIAnswer.response(head, body: body)
        }
        answers.withLock { $0[path] = Answer(source: source, accept: accept, head: head, body: whole) }
        return APIAnswer.response(head, whole: whole)
    }
}
