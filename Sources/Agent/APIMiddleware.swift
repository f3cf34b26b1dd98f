import Hummingbird

/// What every API request passes before its route, in this order: errors into the API's one
/// shape (`APIErrorResponse`), metrics (`APIMetrics`), the bearer token on TCP, the document's
/// parameter constraints (`DocumentRoutes`, which the generated code does not check, before any
/// handler runs), and the body limit (`RequestBody`).
///
/// One middleware rather than one for each step: every middleware is an async call with a
/// closure of its own and an executor check on entry, on every request; the steps are plain
/// calls here.
struct APIMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: DocumentRoutes
    /// Nil on the unix socket, which its permissions guard.
    let token: BearerToken?
    let metrics: APIMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let start = ContinuousClock.now
            try token?.authorize(request)
            let query = request.uri.queryParameters.map { (String($0.key), String($0.value)) }
            if let violation = routes.violation(method: request.method, path: request.uri.path, query: query, headers: request.headers) {
                throw violation
            }
            // A request without a body (most reads) has nothing to read or keep, and skips the
            // call that would read it.
            let hasBody = request.headers[.contentLength] != nil || request.headers[.transferEncoding] != nil
            let response = try await hasBody ? RequestBody.reading(request, context: context, next: next) : next(request, context)
            // Only answers count: a refusal thrown on the way (401, 400, 404, 405, a handler's
            // error) is not, as before these steps were one middleware.
            metrics.record(
                method: request.method, route: context.endpointPath ?? "unmatched", statusCode: response.status.code,
                duration: ContinuousClock.now - start)
            return response
        } catch {
            return APIErrorResponse.response(for: error, to: request, routes: routes)
        }
    }
}
