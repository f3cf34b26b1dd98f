import Hummingbird
import HummingbirdCore
import Logging
import TestSupport

/// Runs `router` on 127.0.0.1:`port` in a task of its own (cancel it to stop) and returns once
/// the port accepts connections. The servers log at `critical` only: stopping is a
/// cancellation, which Hummingbird logs as errors, and a test's output is not the place.
func serveOnLoopback(
    _ router: Router<BasicRequestContext>, port: Int, server: HTTPServerBuilder = .http1(), name: String
) async throws -> Task<Void, any Error> {
    var logger = Logger(label: name)
    logger.logLevel = .critical
    let application = Application(
        router: router, server: server, configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
    let task = Task { try await application.runService() }
    let deadline = ContinuousClock.now + .seconds(10)
    while !loopbackAccepts(port: port) {
        guard ContinuousClock.now < deadline else {
            task.cancel()
            throw RegistryTestFailure("the \(name) did not listen on \(port)")
        }
        try await Task.sleep(for: .milliseconds(20))
    }
    return task
}
