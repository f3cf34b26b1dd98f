/// The one shape of every error the agent's API returns: a stable code that clients branch on,
/// a message that says what to do, and — for manifest problems — each problem's JSON path.
public struct APIError: Codable, Sendable, Hashable, Error, CustomStringConvertible {
    /// One located problem of a manifest.
    public struct Issue: Codable, Sendable, Hashable {
        public var path: String
        public var message: String

        public init(path: String, message: String) {
            self.path = path
            self.message = message
        }
    }

    /// Stable identifier (``APIErrorCode``), e.g. `invalid_manifest`, `revision_conflict`.
    public var code: String
    /// What went wrong and what to do about it.
    public var message: String
    /// The JSON path the error is about, when it is about one value.
    public var path: String?
    /// Every problem of an invalid manifest.
    public var issues: [Issue]
    /// The current revision, on a `revision_conflict`.
    public var currentRevision: UInt64?

    public init(code: String, message: String, path: String? = nil, issues: [Issue] = [], currentRevision: UInt64? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.issues = issues
        self.currentRevision = currentRevision
    }

    public var description: String {
        var text = "\(code): \(message)"
        for issue in issues { text += "\n  \(issue.path): \(issue.message)" }
        return text
    }
}

/// The codes that are not the controller's own (those pass through unchanged).
public enum APIErrorCode {
    public static let badRequest = "bad_request"
    /// A request body over the API's limit (16 MiB).
    public static let payloadTooLarge = "payload_too_large"
    public static let notFound = "not_found"
    public static let unauthorized = "unauthorized"
    public static let noLeader = "no_leader"
    /// The leader refuses new changes until earlier ones commit (its followers lag behind).
    public static let overloaded = "overloaded"
    public static let timeout = "timeout"
    public static let internalError = "internal"
    public static let invalidManifest = "invalid_manifest"
    public static let revisionConflict = "revision_conflict"

    /// The HTTP status for a code.
    public static func httpStatus(for code: String) -> Int {
        switch code {
        case badRequest, invalidManifest, "invalid_replicas", "invalid_node": 400
        case unauthorized: 401
        case payloadTooLarge: 413
        case notFound, "application_not_found", "service_not_found", "node_not_found", "instance_not_found": 404
        case revisionConflict, "stale_heartbeat": 409
        case noLeader, overloaded: 503
        case timeout: 504
        default: 500
        }
    }
}
