import AgentAPI
import Hummingbird

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
