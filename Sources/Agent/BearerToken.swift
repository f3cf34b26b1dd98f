import AgentAPI
import HTTPTypes
import Hummingbird

/// TCP access needs `Authorization: Bearer <token>` (DESIGN.md §7); the unix socket is guarded
/// by its permissions instead.
struct BearerToken: Sendable {
    /// `Bearer <token>`, built once: the check runs on every request.
    private let expected: [UInt8]

    init(_ token: String) { expected = Array("Bearer \(token)".utf8) }

    func authorize(_ request: Request) throws(APIError) {
        guard accepts(request.headers) else {
            throw APIError(code: APIErrorCode.unauthorized, message: "this endpoint needs `Authorization: Bearer <token>`; pass --token or set FLOTILLA_TOKEN")
        }
    }

    /// Whether `headers` carry the token.
    func accepts(_ headers: HTTPFields) -> Bool {
        let given = Self.authorization(headers)
        // Compare in constant time so that the token cannot be guessed byte by byte; the UTF-8
        // view is read in place (no copy of the header per request).
        var difference = given.utf8.count ^ expected.count
        for (a, b) in zip(given.utf8, expected) { difference |= Int(a ^ b) }
        return difference == 0
    }

    /// `headers[.authorization] ?? ""`, without the generic join that subscript goes through
    /// for the usual single field.
    private static func authorization(_ headers: HTTPFields) -> String {
        var found: String?
        for field in headers where field.name == .authorization {
            // Several fields: their values joined, as the subscript gives them.
            guard found == nil else { return headers[.authorization] ?? "" }
            found = field.value
        }
        return found ?? ""
    }
}
