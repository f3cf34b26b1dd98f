import AgentAPI
import Hummingbird
import NIOCore

/// Reads every request body before the handlers do: at most 16 MiB (413 payload_too_large
/// past it, whatever Content-Length said), kept for the handler that needs the bytes as sent
/// (a manifest: its problems are located in the text, and the revision keeps it as written).
struct RequestBodyMiddleware<Context: RequestContext>: RouterMiddleware {
    static var limitBytes: Int { 16 << 20 }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        // A request without a body (most reads) has nothing to read or keep.
        if request.headers[.contentLength] == nil && request.headers[.transferEncoding] == nil {
            return try await next(request, context)
        }
        var request = request
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > Self.limitBytes {
            throw Self.tooLarge
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: Self.limitBytes)
        } catch is NIOTooManyBytesError {
            throw Self.tooLarge
        } catch {
            throw APIError(code: APIErrorCode.badRequest, message: "the request body could not be read: \(error)")
        }
        return try await RequestBody.$bytes.withValue(Array(buffer.readableBytesView)) {
            try await next(request, context)
        }
    }

    static var tooLarge: APIError {
        APIError(
            code: APIErrorCode.payloadTooLarge,
            message: "the request body is larger than \(limitBytes >> 20) MiB; split the manifest into several applications")
    }
}

/// The body `RequestBodyMiddleware` read, while the request's handler runs.
enum RequestBody {
    @TaskLocal static var bytes: [UInt8]?
}
