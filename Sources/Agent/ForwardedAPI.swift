import AgentAPI
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// An API request a client agent passes to a server (a client keeps no copy of the state to
/// answer from), and the server's answer, as they travel in a call.
struct ForwardedHTTPRequest: Sendable, Codable {
    var method: String
    /// Path and query.
    var target: String
    var headers: [[String]]
    var body: Data
}

struct ForwardedHTTPResponse: Sendable, Codable {
    var status: Int
    var headers: [[String]]
    var body: Data
}

/// The context of a request that came over the cluster channel rather than a socket of this
/// agent's own.
struct ForwardedRequestContext: RequestContext {
    struct Source: RequestContextSource {
        let logger: Logger
    }

    var coreContext: CoreRequestContextStorage

    init(source: Source) {
        coreContext = CoreRequestContextStorage(source: source)
    }
}

/// A server's side: runs forwarded requests through its own API, as if they had come on its
/// unix socket (the caller proved with its certificate that it is an agent of the cluster).
final class ForwardedAPIResponder: Sendable {
    private let responder = Deferred<RouterResponder<ForwardedRequestContext>>()
    private let logger: Logger

    init(logger: Logger) {
        self.logger = logger
    }

    /// The API to answer with, once the agent has built it.
    func serve(_ api: APIContext) throws {
        responder.set(try APIRouter.router(api, token: nil, context: ForwardedRequestContext.self).buildResponder())
    }

    func answer(_ forwarded: ForwardedHTTPRequest) async throws -> ForwardedHTTPResponse {
        let response = try await respond(to: forwarded)
        let collected = CollectedBody()
        try await response.body.write(CollectingWriter(collected: collected))
        return ForwardedHTTPResponse(
            status: response.status.code, headers: response.headers.map { [$0.name.rawName, $0.value] }, body: collected.data)
    }

    /// A streaming request (events or output as they come): the status and headers now, the
    /// body as it is written (``StreamCall``).
    func openStream(_ forwarded: ForwardedHTTPRequest) async throws -> (
        head: ForwardedHTTPResponse, produce: @Sendable (@escaping @Sendable ([UInt8]) async -> Void) async throws -> Void
    ) {
        let response = try await respond(to: forwarded)
        let head = ForwardedHTTPResponse(status: response.status.code, headers: response.headers.map { [$0.name.rawName, $0.value] }, body: Data())
        let body = response.body
        return (head, { write in try await body.write(RelayingWriter(write: write)) })
    }

    private func respond(to forwarded: ForwardedHTTPRequest) async throws -> Response {
        guard let responder = responder.value else {
            throw APIError(code: APIErrorCode.noLeader, message: "this server is still starting; retry in a moment")
        }
        let fields = HTTPFields(pairs: forwarded.headers)
        let head = HTTPRequest(method: HTTPRequest.Method(forwarded.method) ?? .get, scheme: nil, authority: nil, path: forwarded.target, headerFields: fields)
        let request = Request(head: head, body: HummingbirdCore.RequestBody(buffer: ByteBuffer(bytes: forwarded.body)))
        return try await responder.respond(to: request, context: ForwardedRequestContext(source: .init(logger: logger)))
    }
}

/// Passes each part of a response body on as it is written.
private struct RelayingWriter: ResponseBodyWriter {
    let write: @Sendable ([UInt8]) async -> Void

    mutating func write(_ buffer: ByteBuffer) async throws {
        await write(Array(buffer.readableBytesView))
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

/// Where ``CollectingWriter`` puts what the body writes.
private final class CollectedBody: @unchecked Sendable {
    // Written by one body writer at a time, read after it finished.
    var data = Data()
}

private struct CollectingWriter: ResponseBodyWriter {
    let collected: CollectedBody

    mutating func write(_ buffer: ByteBuffer) async throws {
        collected.data.append(contentsOf: buffer.readableBytesView)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}

/// A client's side: every API request on its socket goes to a server over the cluster
/// channel, and the server's answer comes back as it was given; streams (event streams, log
/// follow) as they come, pulled from the server (``StreamCall``).
struct APIForwardingMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: BearerToken?
    let forward: @Sendable (ForwardedHTTPRequest) async throws -> ForwardedHTTPResponse
    /// A streaming request (`stream=true`, `follow=true`, `watch=true`): the head, and the body as it comes.
    let forwardStream: @Sendable (ForwardedHTTPRequest) async throws -> (ForwardedHTTPResponse, AsyncThrowingStream<[UInt8], any Error>)
    /// The longest a relayed stream lasts (the server ends its own sooner, at its --max-query-wait).
    let streamLimit: Duration
    /// What this agent answers itself, about its own node, instead of relaying; nil: relay.
    var answerLocally: @Sendable (Request) throws -> Response? = { _ in nil }


    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            try token?.authorize(request)
            if let answer = try answerLocally(request) { return answer }
            let query = request.uri.queryParameters
            // A catalog watch (`watch=true`, server-sent events) too: collected whole, its first
            // answer came only when the server ended the stream, at its wait.
            let streams = query["stream"] == "true" || query["follow"] == "true" || query["watch"] == "true"
            var request = request
            let body: ByteBuffer
            do {
                body = try await request.collectBody(upTo: RequestBody.limitBytes)
            } catch is NIOTooManyBytesError {
                throw RequestBody.tooLarge
            }
            let forwarded = ForwardedHTTPRequest(
                method: request.method.rawValue, target: request.uri.description,
                headers: request.headers.filter { $0.name != .authorization }.map { [$0.name.rawName, $0.value] }, body: Data(buffer: body))
            if streams {
                let (answer, body) = try await forwardStream(forwarded)
                // Ends at the agent's shutdown too, like the server's own streams: a quiet stream
                // (no output to follow) would otherwise hold the shutdown up until it ends.
                return Response(
                    status: HTTPResponse.Status(code: answer.status), headers: HTTPFields(pairs: answer.headers),
                    body: ResponseBody(asyncSequence: APIHandler.bounded(body, for: streamLimit).map { ByteBuffer(bytes: $0) }))
            }
            let answer = Self.isBlockingQuery(method: request.method, index: query["index"])
                ? try await relayBlocking(forwarded) : try await forward(forwarded)
            return Response(status: HTTPResponse.Status(code: answer.status), headers: HTTPFields(pairs: answer.headers), body: ResponseBody(byteBuffer: ByteBuffer(data: answer.body)))
        } catch let error as APIError {
            return APIErrorResponse.response(error)
        } catch {
            return APIErrorResponse.response(APIError(code: APIErrorCode.noLeader, message: "no server answered this client's request: \(error)"))
        }
    }
}

extension APIForwardingMiddleware {
    /// A blocking query (`?index=`), relayed until this agent starts stopping; then asked again
    /// without its wait, so that it answers at once with what is there, as a server's blocking
    /// queries do when it stops. Otherwise its wait (up to --max-query-wait) held the stop up to
    /// its limit.
    func relayBlocking(_ request: ForwardedHTTPRequest) async throws -> ForwardedHTTPResponse {
        do {
            return try await cancelWhenGracefulShutdown { try await forward(request) }
        } catch {
            guard Task.isShuttingDownGracefully else { throw error }
            var now = request
            now.target = Self.withoutWait(request.target)
            return try await forward(now)
        }
    }

    /// A blocking query: a GET with `index`. Only reads are asked again at a stop; a write
    /// with a stray `index` (the API ignores parameters it does not declare) may already have
    /// acted when its relay was cancelled.
    static func isBlockingQuery(method: HTTPRequest.Method, index: Substring?) -> Bool {
        method == .get && index != nil
    }

    /// `target` without its `index` and `wait` query parameters.
    static func withoutWait(_ target: String) -> String {
        guard let mark = target.firstIndex(of: "?") else { return target }
        let kept = target[target.index(after: mark)...].split(separator: "&").filter { parameter in
            let name = parameter.split(separator: "=", maxSplits: 1).first ?? ""
            return name != "index" && name != "wait"
        }
        return String(target[..<mark]) + (kept.isEmpty ? "" : "?" + kept.joined(separator: "&"))
    }
}

extension HTTPFields {
    /// Header fields as they travel in a relayed request or answer: `[name, value]` pairs.
    init(pairs: [[String]]) {
        self.init()
        for pair in pairs where pair.count == 2 {
            if let name = HTTPField.Name(pair[0]) { append(HTTPField(name: name, value: pair[1])) }
        }
    }
}
