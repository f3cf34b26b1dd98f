import Hummingbird
import NIOCore

/// Hands a response of known length to Hummingbird as one buffer. The generated routes return
/// every body as a stream (swift-openapi-hummingbird writes it chunk by chunk through a
/// writer), which costs a socket write for the head and another for the body, and a task hop
/// for each; one buffer goes out with the head in a single writev. Streams (events, log follow)
/// have no length and pass through untouched.
struct WholeResponseMiddleware<Context: RequestContext>: RouterMiddleware {
    /// Bodies above this are left streaming rather than held in memory at once.
    static var limitBytes: Int { 4 << 20 }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        guard let length = response.headers[.contentLength].flatMap(Int.init), length <= Self.limitBytes else { return response }
        let collected = CollectedBody(capacity: length)
        try await response.body.write(CollectingWriter(into: collected))
        response.body = ResponseBody(byteBuffer: collected.buffer)
        return response
    }
}

/// Where `CollectingWriter` puts what it is given (the writer itself is consumed by `write`).
private final class CollectedBody {
    var buffer: ByteBuffer

    init(capacity: Int) { buffer = ByteBufferAllocator().buffer(capacity: capacity) }
}

private struct CollectingWriter: ResponseBodyWriter {
    let collected: CollectedBody

    init(into collected: CollectedBody) { self.collected = collected }

    mutating func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        collected.buffer.writeBuffer(&buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
