/// The one shape of every error the API returns (`#/components/schemas/APIError`, generated):
/// a stable code clients branch on, a message that says what to do, and, for manifest problems,
/// each problem's JSON path.
public typealias APIError = Components.Schemas.APIError

extension Components.Schemas.APIError: Error, CustomStringConvertible {
    /// An error with no located issues.
    public init(code: String, message: String, path: String? = nil) {
        self.init(code: code, message: message, path: path, issues: [])
    }

    /// `code: message`, then each located issue on a line of its own.
    public var description: String {
        var text = "\(code): \(message)"
        for issue in issues { text += "\n  \(issue.path): \(issue.message)" }
        return text
    }

    /// The HTTP status the code answers with.
    public var httpStatus: Int { APIErrorCode.httpStatus(for: code) }
}

/// The codes that are not the controller's own (those pass through unchanged), and the HTTP
/// status of every code. openapi.json lists them in APIError's `code`.
public enum APIErrorCode {
    public static let badRequest = "bad_request"
    public static let notFound = "not_found"
    public static let methodNotAllowed = "method_not_allowed"
    public static let unauthorized = "unauthorized"
    public static let noLeader = "no_leader"
    /// The leader refuses new changes until earlier ones commit (its followers lag behind).
    public static let overloaded = "overloaded"
    public static let timeout = "timeout"
    public static let internalError = "internal"
    /// Well-formed JSON that is not a valid manifest: 422, with every problem located.
    public static let invalidManifest = "invalid_manifest"
    public static let revisionConflict = "revision_conflict"
    /// A request body over the API's limit (16 MiB).
    public static let payloadTooLarge = "payload_too_large"
    public static let instanceNotFound = "instance_not_found"
    /// A key-value key that does not exist.
    public static let keyNotFound = "key_not_found"
    /// A check-and-set (`?cas=`) whose modify index did not match.
    public static let casFailed = "cas_failed"
    /// Parameters that are each valid but not together (`raw` with `recurse`).
    public static let conflictingParameters = "conflicting_parameters"
    /// A transaction's comparison that did not hold.
    public static let compareFailed = "compare_failed"

    /// An `Accept` that allows none of the operation's answer's content types.
    public static let notAcceptable = "not_acceptable"
    /// A request body of a content type the operation does not take.
    public static let unsupportedMediaType = "unsupported_media_type"

    /// The HTTP status for a code.
    public static func httpStatus(for code: String) -> Int {
        switch code {
        case badRequest: 400
        case unauthorized: 401
        case notFound, "application_not_found", "service_not_found", "node_not_found", instanceNotFound, keyNotFound, "revision_not_found": 404
        case methodNotAllowed: 405
        case notAcceptable: 406
        case revisionConflict, "stale_heartbeat", "member_conflict", casFailed, compareFailed, "rollout_state", "revision_not_rolled_out": 409
        case payloadTooLarge, "value_too_large": 413
        case unsupportedMediaType: 415
        // Well-formed requests the controller refuses (Kubernetes answers invalid objects so).
        case invalidManifest, "invalid_replicas", "invalid_node", "invalid_key", "invalid_transaction", conflictingParameters: 422
        case noLeader, overloaded: 503
        case timeout: 504
        default: 500
        }
    }
}

/// The OpenAPI document this module is generated from, as the agent serves it.
public enum APIDocument {
    /// The bytes of openapi.json, embedded at build time.
    public static var bytes: [UInt8] { PackageResources.openapi_json }
}
