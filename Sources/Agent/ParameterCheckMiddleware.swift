import Hummingbird

/// Refuses a request whose parameters break the document's constraints (`DocumentRoutes`),
/// which the generated code does not check, before any handler runs.
struct ParameterCheckMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: DocumentRoutes

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let query = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
        if let violation = routes.violation(method: request.method, path: request.uri.path, query: query, headers: request.headers) {
            throw violation
        }
        return try await next(request, context)
    }
}
