import Foundation
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// SIGTERM while a client holds a request open (a body announced and never sent): the stop
/// waits for it up to `Agent.shutdownLimit` (10 s), without spinning meanwhile, and then ends.
@Suite(.dedicatedThread, .enabled(if: getuid() == 0, "needs root: agentd launches services"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct AgentShutdownTests {
    @Test func aRequestHeldOpenNeitherSpinsNorHoldsTheStop() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        guard let process = agent.process else { throw TestFailure("agentd is not running") }
        let descriptor = try UnixHTTP.connect(socket: agent.socket)
        defer { close(descriptor) }
        // A whole request first (its answer read), so that the connection is taken; then one
        // whose head is complete and whose body never comes, given a second to be read.
        try UnixHTTP.send("GET /v1/kv/held HTTP/1.1\r\nHost: agentd\r\n\r\n", on: descriptor)
        var answer = [UInt8](repeating: 0, count: 4096)
        guard read(descriptor, &answer, answer.count) > 0 else { throw TestFailure("no answer to the first request: errno \(errno)") }
        try UnixHTTP.send("PUT /v1/kv/held HTTP/1.1\r\nHost: agentd\r\nContent-Length: 1000\r\n\r\nabc", on: descriptor)
        usleep(1_000_000)
        let signalled = Date()
        kill(process.processIdentifier, SIGTERM)
        // Once the stop is under way (the feeds finished, the API waiting for the request),
        // 5 s of CPU time: a few ticks of timers, where the loops that went round without
        // pause took about 150 a second (1.5 cores).
        while !agent.agentLog().contains("stopping: blocking queries answered"), Date().timeIntervalSince(signalled) < 5 { usleep(50_000) }
        usleep(200_000)
        let before = try cpuTicks(statFile: "/proc/\(process.processIdentifier)/stat")
        usleep(5_000_000)
        let spent = try cpuTicks(statFile: "/proc/\(process.processIdentifier)/stat") - before
        #expect(process.isRunning, "agentd stopped early: the request did not hold the stop, so nothing was measured: \(agent.agentLog())")
        #expect(spent < 50, "agentd took \(spent) ticks of CPU (of \(sysconf(Int32(_SC_CLK_TCK))) a second) in 5 s of waiting: \(agent.agentLog())")
        while process.isRunning && Date().timeIntervalSince(signalled) < 30 { usleep(100_000) }
        let took = Date().timeIntervalSince(signalled)
        #expect(!process.isRunning, "agentd still running 30 s after SIGTERM: \(agent.agentLog())")
        #expect(took >= 9 && took < 20, "stopped \(took) s after SIGTERM, where the limit is 10 s")
        let log = agent.agentLog()
        #expect(log.contains("stopping: blocking queries answered; other requests get 10.0 seconds to end"))
        #expect(log.contains("stopping: what was still running after 10.0 seconds (requests held open) was cut off"), "\(log)")
    }

    /// A client agent relays blocking queries to a server; stopping, it asks again without the
    /// wait and answers at once, as a server does, instead of holding its stop up to the limit.
    @Test func aClientAgentAnswersItsBlockingQueriesWhenItStops() throws {
        let (server, client, _, _) = try ClientAgentTests.serverAndClient()
        defer {
            client.shutdown()
            server.shutdown()
        }
        guard let process = client.process else { throw TestFailure("the client agent is not running") }
        final class Answer: @unchecked Sendable {
            let lock = NSLock()
            var status: Int?
            var error: String?
        }
        let answer = Answer()
        let answered = DispatchSemaphore(value: 0)
        let socket = client.socket
        DispatchQueue.global().async {
            do {
                let reply = try UnixHTTP.exchange("GET", "/v1/kv/held?index=999999&wait=60s", socket: socket, timeout: .seconds(40))
                answer.lock.withLock { answer.status = reply.status }
            } catch {
                answer.lock.withLock { answer.error = "\(error)" }
            }
            answered.signal()
        }
        usleep(1_500_000)
        let signalled = Date()
        kill(process.processIdentifier, SIGTERM)
        #expect(answered.wait(timeout: .now() + 8) == .success, "the blocking query was not answered within 8 s of SIGTERM")
        let (status, error) = answer.lock.withLock { (answer.status, answer.error) }
        // No such key: the answer of the query asked again at once.
        #expect(status == 404, "answered \(String(describing: status)), error \(error ?? "none"): \(client.agentLog())")
        while process.isRunning && Date().timeIntervalSince(signalled) < 30 { usleep(100_000) }
        let took = Date().timeIntervalSince(signalled)
        #expect(took < 8, "the client agent stopped \(took) s after SIGTERM: \(client.agentLog())")
    }
}
