import HTTPTypes
import Metrics
import Synchronization

/// Counts API requests by route and status, and times them (`flotilla_api_requests_total`,
/// `flotilla_api_request_duration_seconds`).
///
/// The handles are made once for each method, route and status and kept: making one goes
/// through the metrics factory's lock and its registry's lookup by name and labels, with a
/// label array built for it, on every request otherwise.
final class APIMetrics: Sendable {
    private struct Key: Hashable {
        var method: HTTPRequest.Method
        var route: String
        var statusCode: Int
    }

    private struct Handles: Sendable {
        var requests: Counter
        var duration: Metrics.Timer
    }

    private let handles = Mutex<[Key: Handles]>([:])

    /// `route` is the route's template, not the concrete path, so that labels stay few.
    func record(method: HTTPRequest.Method, route: String, statusCode: Int, duration: Duration) {
        let key = Key(method: method, route: route, statusCode: statusCode)
        let found = handles.withLock { $0[key] }
        let handles = found ?? self.handles.withLock { handles in
            if let made = handles[key] { return made }
            let made = Handles(
                requests: Counter(
                    label: "flotilla_api_requests_total", dimensions: [("method", method.rawValue), ("route", route), ("status", String(statusCode))]),
                duration: Metrics.Timer(label: "flotilla_api_request_duration_seconds", dimensions: [("route", route)]))
            handles[key] = made
            return made
        }
        handles.requests.increment()
        handles.duration.record(duration: duration)
    }
}
