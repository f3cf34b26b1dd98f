import Hummingbird
import Metrics

/// Counts API requests by route and status, and times them (`flotilla_api_requests_total`,
/// `flotilla_api_request_duration_seconds`).
struct APIMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        // The route's template, not the concrete path, so that labels stay few.
        let route = context.endpointPath ?? "unmatched"
        let labels = [("method", request.method.rawValue), ("route", route), ("status", String(response.status.code))]
        Counter(label: "flotilla_api_requests_total", dimensions: labels).increment()
        Metrics.Timer(label: "flotilla_api_request_duration_seconds", dimensions: [("route", route)]).record(duration: ContinuousClock.now - start)
        return response
    }
}
