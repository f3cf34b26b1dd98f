import AgentAPI
import Foundation
import HTTPTypes
import Hummingbird
import Manifest
import NIOCore

/// JSON bodies and error responses in the API's one shape.
enum HTTPSupport {
    static let indexHeader = HTTPField.Name("X-Flotilla-Index")!

    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }

    /// A JSON response; `index`, when given, goes in `X-Flotilla-Index` for blocking queries.
    static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, index: UInt64? = nil) throws -> Response {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let index { headers[indexHeader] = String(index) }
        let data = try encoder().encode(value)
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ error: APIError) -> Response {
        let status = HTTPResponse.Status(code: APIErrorCode.httpStatus(for: error.code))
        do {
            return try json(error, status: status)
        } catch {
            return Response(status: .internalServerError)
        }
    }

    /// Reads a request body of at most `limit` bytes.
    static func body(_ request: Request, limit: Int = 16 << 20) async throws(APIError) -> [UInt8] {
        do {
            var buffer = try await request.body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        } catch is NIOTooManyBytesError {
            throw APIError(
                code: APIErrorCode.payloadTooLarge,
                message: "the request body is larger than \(limit >> 20) MiB; split the manifest into several applications")
        } catch {
            throw APIError(code: APIErrorCode.badRequest, message: "the request body could not be read: \(error)")
        }
    }

    static func decode<Value: Decodable>(_ type: Value.Type, from request: Request) async throws(APIError) -> Value {
        let bytes = try await body(request)
        do {
            return try JSONDecoder().decode(type, from: Data(bytes))
        } catch {
            throw APIError(code: APIErrorCode.badRequest, message: "the request body is not a valid \(type): \(error)")
        }
    }

    /// A query parameter that must parse if present.
    static func query<Value>(_ request: Request, _ name: String, _ parse: (String) -> Value?) throws(APIError) -> Value? {
        guard let text = request.uri.queryParameters.get(name) else { return nil }
        guard let value = parse(text) else {
            throw APIError(code: APIErrorCode.badRequest, message: "query parameter \(name)=\(text) is not valid", path: name)
        }
        return value
    }

    static func flag(_ request: Request, _ name: String) throws(APIError) -> Bool {
        try query(request, name) { ["true": true, "1": true, "false": false, "0": false, "": true][$0] } ?? false
    }

    /// `?wait=30s`, as manifests write durations; at most five minutes.
    static func wait(_ request: Request) throws(APIError) -> Duration {
        let wait = try query(request, "wait") { try? DurationText.parse($0) } ?? .seconds(60)
        return min(wait, .seconds(300))
    }
}

/// Turns every error a handler throws into the API's error shape.
struct APIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            return HTTPSupport.error(error)
        } catch let error as HTTPError {
            let code = error.status == .notFound ? APIErrorCode.notFound : APIErrorCode.badRequest
            let message = error.status == .notFound ? "no such path: \(request.method) \(request.uri.path); see /v1/openapi.json" : (error.body ?? "\(error.status)")
            return HTTPSupport.error(APIError(code: code, message: message))
        } catch {
            return HTTPSupport.error(APIError(code: APIErrorCode.internalError, message: "\(error)"))
        }
    }
}

/// TCP access needs `Authorization: Bearer <token>` (DESIGN.md §7); the unix socket is guarded
/// by its permissions instead.
struct BearerTokenMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let given = request.headers[.authorization] ?? ""
        let expected = "Bearer " + token
        // Compare in constant time so that the token cannot be guessed byte by byte.
        let a = Array(given.utf8)
        let b = Array(expected.utf8)
        var difference = a.count ^ b.count
        for index in 0..<min(a.count, b.count) { difference |= Int(a[index] ^ b[index]) }
        guard difference == 0 else {
            throw APIError(code: APIErrorCode.unauthorized, message: "this endpoint needs `Authorization: Bearer <token>`; pass --token or set FLOTILLA_TOKEN")
        }
        return try await next(request, context)
    }
}
