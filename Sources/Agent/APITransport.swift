import HTTPTypes
import Hummingbird
import NIOCore
import OpenAPIRuntime

/// Mounts the generated operations (`registerHandlers(on:)`) on a Hummingbird router.
///
/// It does what swift-openapi-hummingbird's `register` does (the request as an `HTTPBody`, the
/// route's parameters as the operation's path parameters), except for the answer: the
/// generated code returns every body as a stream, which that adapter writes chunk by chunk
/// through a writer closure (a socket write for the head, another for the body, and a task
/// hop for each). A body of known length is gathered here instead and handed to Hummingbird
/// as one buffer, which goes out with its head in a single writev; streams (events, log
/// follow) have no length and still stream. The built-in documents are mounted in place of their
/// generated handlers (`BuiltInDocuments`). A path whose last parameter takes the rest of the
/// path (`DocumentRoutes`) is mounted with Hummingbird's `**`, and the rest, as sent, is that
/// parameter (the generated code percent-decodes it).
struct APITransport<Context: RequestContext>: ServerTransport {
    let router: Router<Context>
    let routes: DocumentRoutes
    let documents: BuiltInDocuments
    /// Answers of `StateAnswerCache.paths`, kept between changes of the state.
    let answers: StateAnswerCache

    func register(
        _ handler: @escaping @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?),
        method: HTTPRequest.Method, path: String
    ) throws {
        if let document = documents.document(atPath: path, method: method) {
            router.on(RouterPath(path), method: method) { [documents] _, _ in documents.response(document) }
            return
        }
        let restOfPath = routes.restOfPathParameter(ofTemplate: path)
        let routerPath = restOfPath.map { String(path.dropLast($0.count + 2)) + "**" } ?? path
        // The segments before the rest, counted once here rather than on every request.
        let fixedSegments = routerPath.split(separator: "/").count - 1
        let cached = StateAnswerCache.caches(method: method, path: path)
        router.on(RouterPath(routerPath), method: method) { [answers] request, context in
            let body: HTTPBody
            if let contentLength = request.headers[.contentLength] {
                let length: HTTPBody.Length = if let declared = Int64(contentLength) { .known(declared) } else { .unknown }
                body = HTTPBody(request.body.map { [UInt8](buffer: $0) }, length: length, iterationBehavior: .single)
            } else if request.headers[.transferEncoding] != nil {
                body = HTTPBody(request.body.map { [UInt8](buffer: $0) }, length: .unknown, iterationBehavior: .single)
            } else {
                // Neither header: HTTP/1.1 has no body (RFC 9112 §6.3), and the empty body
                // reads the same without wrapping the request's stream.
                body = HTTPBody()
            }
            var pathParameters = [String: Substring](context.parameters.map { (String($0.0), $0.1) }) { first, _ in first }
            if let restOfPath {
                pathParameters[restOfPath] = DocumentRoutes.rest(of: request.uri.path, after: fixedSegments).map { $0[...] }
            }
            let metadata = ServerRequestMetadata(pathParameters: pathParameters)
            if cached {
                return try await answers.answer(request, path: path) { try await handler(request.head, body, metadata) }
            }
            let (head, responseBody) = try await handler(request.head, body, metadata)
            return try await APIAnswer.response(head, body: responseBody)
        }
    }
}

/// A generated operation's answer as Hummingbird's response.
enum APIAnswer {
    /// Bodies above this are left streaming rather than held in memory at once.
    static var wholeLimitBytes: Int64 { 4 << 20 }

    static func response(_ head: HTTPResponse, body: HTTPBody?) async throws -> Response {
        guard let body else { return response(head, whole: ByteBuffer()) }
        if let whole = try await whole(body) { return response(head, whole: whole) }
        switch body.length {
        case .known(let length):
            let chunks = body.map { ByteBuffer(bytes: $0) }
            return Response(
                status: head.status, headers: head.headerFields,
                body: ResponseBody(contentLength: Int(length)) { writer in
                    for try await chunk in chunks { try await writer.write(chunk) }
                    try await writer.finish(nil)
                })
        case .unknown:
            return Response(status: head.status, headers: head.headerFields, body: ResponseBody(asyncSequence: body.map { ByteBuffer(bytes: $0) }))
        }
    }

    static func response(_ head: HTTPResponse, whole: ByteBuffer) -> Response {
        Response(status: head.status, headers: head.headerFields, body: ResponseBody(byteBuffer: whole))
    }

    /// The body in one buffer, if its length is known and at most `wholeLimitBytes`; nil
    /// otherwise, with the body left unread.
    static func whole(_ body: HTTPBody) async throws -> ByteBuffer? {
        guard case .known(let length) = body.length, length <= wholeLimitBytes else { return nil }
        var buffer = ByteBufferAllocator().buffer(capacity: Int(length))
        for try await chunk in body { buffer.writeBytes(chunk) }
        return buffer
    }
}
