import AgentAPI
import Hummingbird
import NIOCore

/// Every request body is read before the handlers run: at most 16 MiB (413 payload_too_large
/// past it, whatever Content-Length said), kept for the handler that needs the bytes as sent
/// (a manifest: its problems are located in the text, and the revision keeps it as written).
enum RequestBody {
    static var limitBytes: Int { 16 << 20 }

    /// The body `reading(_:context:next:)` read (or `KVFastPath`, for the plain writes it
    /// takes), while the request's handler runs.
    @TaskLocal static var bytes: [UInt8]?

    /// Runs `next` with the request's body read and kept in `bytes`; for a request that has a
    /// body (Content-Length or Transfer-Encoding).
    static func reading<Context: RequestContext>(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        var request = request
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > limitBytes {
            throw tooLarge
        }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limitBytes)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        } catch {
            throw APIError(code: APIErrorCode.badRequest, message: "the request body could not be read: \(error)")
        }
        return try await $bytes.withValue(Array(buffer.readableBytesView)) {
            try await next(request, context)
        }
    }

    static var tooLarge: APIError {
        APIError(
            code: APIErrorCode.payloadTooLarge,
            message: "the request body is larger than \(limitBytes >> 20) MiB; split the manifest into several applications")
    }
}
