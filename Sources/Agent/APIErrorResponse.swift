import AgentAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import OpenAPIRuntime

/// Turns every error a request meets into the API's one shape: the handlers' `APIError`s, the
/// generated code's refusals of parameters and bodies that do not match the document (400,
/// naming the parameter), a body over the limit (413), and a path that exists with another
/// method (405 with `Allow`).
enum APIErrorResponse {
    static func response(for error: any Error, to request: Request, routes: DocumentRoutes) -> Response {
        switch error {
        case let error as APIError:
            return response(error)
        case let error as ServerError:
            return response(apiError(error))
        case let error as HTTPError where error.status == .notFound:
            let allowed = routes.allowedMethods(forPath: request.uri.path)
            guard !allowed.isEmpty else {
                return response(APIError(
                    code: APIErrorCode.notFound, message: "no such path: \(request.uri.path); the API's paths are in /v1/openapi.json"))
            }
            let list = allowed.map(\.rawValue).joined(separator: ", ")
            var response = response(APIError(
                code: APIErrorCode.methodNotAllowed, message: "\(request.uri.path) takes \(list), not \(request.method.rawValue)"))
            response.headers[.allow] = list
            return response
        case let error as any HTTPResponseError:
            return response(APIError(code: APIErrorCode.badRequest, message: "\(error)"))
        default:
            return response(APIError(code: APIErrorCode.internalError, message: "\(error)"))
        }
    }

    /// A refusal by the generated code: a handler's own error passes through; a parameter or
    /// body the document does not allow is the client's mistake: 406 for an `Accept` the answer
    /// cannot meet and 415 for a body's content type, as the runtime classes them, 400 otherwise.
    static func apiError(_ error: ServerError) -> APIError {
        if let own = error.underlyingError as? APIError { return own }
        // "Unexpected value for query item index: abc" and the like name the parameter. The
        // runtime's own errors are their cause: said once, not twice.
        let underlying = "\(error.underlyingError)"
        let cause = underlying == error.causeDescription ? underlying : "\(error.causeDescription): \(underlying)"
        let code = switch error.httpStatus {
        case .notAcceptable: APIErrorCode.notAcceptable
        case .unsupportedMediaType: APIErrorCode.unsupportedMediaType
        default: APIErrorCode.badRequest
        }
        return APIError(code: code, message: "\(cause); see /v1/openapi.json for operation \(error.operationID)")
    }

    static func response(_ error: APIError) -> Response {
        Response(
            status: HTTPResponse.Status(code: error.httpStatus), headers: [.contentType: contentType],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: body(error))))
    }

    /// An error's content type.
    static let contentType = "application/json"

    /// An error's JSON.
    static func body(_ error: APIError) -> Data {
        (try? APIJSON.encoder().encode(error)) ?? Data(#"{"code":"internal","issues":[],"message":"the error could not be encoded"}"#.utf8)
    }
}
