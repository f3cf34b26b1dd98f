import AgentAPI
import Foundation
import HTTPTypes
import Hummingbird
import Manifest
import NIOCore

/// Serves the API document (/v1/openapi.json) and the manifest schema
/// (/v1/schemas/manifest.json) as their bytes, in place of their generated handlers.
///
/// Both are free-form objects to the generated code (`OpenAPIObjectContainer`), whose encoder
/// on Linux reads every integer through `NSNumber` and `CFNumberGetType`, and writes some as 0
/// (the schema's `"minimum": 4194304` came out as `0`): the documents that state the contract
/// must reach clients exactly as written. `APITransport` mounts them at the paths openapi.json
/// gives their operations, rather than as an OpenAPI server middleware, which every other
/// operation would pass through on every request too.
struct BuiltInDocuments: Sendable {
    struct Document: Sendable {
        var contentType: String
        var bytes: ByteBuffer
    }

    /// By path template, for GET.
    private let documents: [String: Document]

    init(routes: DocumentRoutes) {
        let byOperation = [
            Operations.GetOpenAPIDocument.id: Document(contentType: "application/json", bytes: ByteBuffer(bytes: APIDocument.bytes)),
            Operations.GetManifestSchema.id: Document(
                contentType: "application/schema+json", bytes: ByteBuffer(string: JSONWriter.pretty(SchemaGenerator.schema()))),
        ]
        // An operation the document no longer has stays with its generated handler, which
        // answers `notServedHere`.
        documents = Dictionary(
            byOperation.compactMap { id, document in routes.path(ofOperation: id).map { ($0, document) } }, uniquingKeysWith: { first, _ in first })
    }

    /// The document served at `path` (a path template, as the generated code registers it).
    func document(atPath path: String, method: HTTPRequest.Method) -> Document? {
        method == .get ? documents[path] : nil
    }

    func response(_ document: Document) -> Response {
        Response(status: .ok, headers: [.contentType: document.contentType], body: ResponseBody(byteBuffer: document.bytes))
    }

    /// What the generated handler of a built-in document answers, were it not replaced.
    static func notServedHere(_ operationID: String) -> APIError {
        APIError(code: APIErrorCode.internalError, message: "\(operationID) is served by BuiltInDocuments, which is not installed")
    }
}
