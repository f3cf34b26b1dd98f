import AgentAPI
import Foundation
import HTTPTypes
import Manifest
import OpenAPIRuntime

/// Serves the API document (/v1/openapi.json) and the manifest schema
/// (/v1/schemas/manifest.json) as their bytes, ahead of the generated handlers.
///
/// Both are free-form objects to the generated code (`OpenAPIObjectContainer`), whose encoder
/// on Linux reads every integer through `NSNumber` and `CFNumberGetType`, and writes some as 0
/// (the schema's `"minimum": 4194304` came out as `0`): the documents that state the contract
/// must reach clients exactly as written.
struct BuiltInDocumentsMiddleware: ServerMiddleware {
    private let documents: [String: (contentType: String, bytes: [UInt8])]

    init() {
        documents = [
            Operations.GetOpenAPIDocument.id: ("application/json", APIDocument.bytes),
            Operations.GetManifestSchema.id: ("application/schema+json", Array(JSONWriter.pretty(SchemaGenerator.schema()).utf8)),
        ]
    }

    func intercept(
        _ request: HTTPRequest, body: HTTPBody?, metadata: ServerRequestMetadata, operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        guard let document = documents[operationID] else { return try await next(request, body, metadata) }
        let response = HTTPResponse(status: .ok, headerFields: [.contentType: document.contentType])
        return (response, HTTPBody(document.bytes))
    }

    /// What the generated handler of a built-in document answers, were this middleware missing.
    static func notServedHere(_ operationID: String) -> APIError {
        APIError(code: APIErrorCode.internalError, message: "\(operationID) is served by BuiltInDocumentsMiddleware, which is not installed")
    }
}
