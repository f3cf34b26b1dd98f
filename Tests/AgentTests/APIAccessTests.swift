import AgentAPI
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// TCP access needs the bearer token; the unix socket is root-only; the event stream streams.
@Suite(.dedicatedThread, .serialized, .enabled(if: getuid() == 0, "needs root: agentd launches services"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct APIAccessTests {
    @Test func tcpNeedsTheTokenAndTheSocketIsRootOnly() throws {
        let port = Int.random(in: 40000...49000)
        let tokenFile = "/tmp/flotilla-token-\(port)"
        try "s3cret-\(port)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { unlink(tokenFile) }
        let agent = try DevAgent(extraArguments: ["--api-tcp", "127.0.0.1:\(port)", "--token-file", tokenFile])
        defer { agent.shutdown() }
        let refused = try UnixHTTP.request("GET", "/v1/version", port: port)
        #expect(refused.status == 401)
        #expect(refused.body.contains("\"code\":\"unauthorized\""))
        let wrong = try UnixHTTP.request("GET", "/v1/version", port: port, headers: ["Authorization": "Bearer nope"])
        #expect(wrong.status == 401)
        let allowed = try UnixHTTP.request("GET", "/v1/version", port: port, headers: ["Authorization": "Bearer s3cret-\(port)"])
        #expect(allowed.status == 200)
        let version = try JSONSerialization.jsonObject(with: Data(allowed.body.utf8)) as? [String: Any]
        #expect(version?["api"] as? String == "v1", "\(allowed.body)")
        // deployctl over TCP with the token.
        let viaTCP = try agent.runDeployctl(["nodes", "--address", "http://127.0.0.1:\(port)", "--token", "s3cret-\(port)"])
        #expect(viaTCP.status == 0 && viaTCP.output.contains("e2e"), "\(viaTCP)")
        let unreachable = try agent.runDeployctl(["nodes", "--address", "http://127.0.0.1:1"])
        #expect(unreachable.status == 3)
        // The socket and its directory are root's alone.
        var info = stat()
        #expect(stat(agent.socket, &info) == 0 && info.st_mode & 0o777 == 0o600)
        #expect(stat((agent.socket as NSString).deletingLastPathComponent, &info) == 0 && info.st_mode & 0o077 == 0)
    }

    /// Events that happen after the stream is open reach it: the replayed history is read first
    /// (the dev node's own event), and only then is the application applied, so the applied
    /// event cannot have come from the replay.
    @Test func eventStreamDeliversChangesAsTheyHappen() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let process = Process()
        process.executableURL = DevAgent.binDirectory.appendingPathComponent("deployctl")
        process.arguments = ["events", "-f", "--address", agent.socket]
        var environment = ProcessInfo.processInfo.environment
        environment["NO_COLOR"] = "1"
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
        let stream = output.fileHandleForReading.fileDescriptor
        let replayed = readPipe(stream, for: .seconds(20)) { $0.contains("node.updated") }
        #expect(replayed.contains("node.updated"), "the stream replayed no history: \(replayed)")
        #expect(!replayed.contains("application.applied"), "\(replayed)")
        #expect(try agent.deployctl("apply", "-f", "manifests/batch.json", "--timeout", "60s").status == 0)
        let live = readPipe(stream, for: .seconds(20)) { $0.contains("application.applied") && $0.contains("completed") }
        #expect(live.contains("application.applied") && live.contains("report") && live.contains("revision 1"), "\(live)")
        #expect(live.contains("instance.placed"))
        #expect(live.contains("completed"))
    }

    /// `events --follow` outlives its agent's restart, as `kv watch` does: it asks again until the
    /// agent answers, and resumes after the last event it showed. Before, it ended with "the event
    /// stream broke off".
    @Test func anEventStreamOutlivesItsAgentsRestart() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let outlived = try agent.following(["events", "--follow"], steps: [
            (waitFor: "node.updated", then: {
                agent.kill9()
                usleep(1_500_000)
                try agent.start()
                #expect(try agent.deployctl("apply", "-f", "manifests/batch.json", "--timeout", "60s").status == 0)
            }),
        ], until: "application.applied", timeout: 90)
        #expect(outlived.contains("asking again in"), "\(outlived)")
        // Resumed after the last event shown: the restart's replay shows nothing twice.
        let lines = outlived.split(separator: "\n").filter { $0.first?.isNumber == true }
        #expect(Set(lines).count == lines.count, "\(outlived)")
    }

    /// Reads what `descriptor` delivers until `done` holds for all of it, the writer closes, or
    /// `limit` passes; poll(2) keeps the deadline even when nothing arrives.
    private func readPipe(_ descriptor: Int32, for limit: Duration, until done: (String) -> Bool) -> String {
        let deadline = ContinuousClock.now + limit
        var text = ""
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !done(text), ContinuousClock.now < deadline {
            var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&ready, 1, 100) > 0 else { continue }
            let count = read(descriptor, &buffer, buffer.count)
            if count <= 0 { break }
            text += String(decoding: buffer[0..<count], as: UTF8.self)
        }
        return text
    }
}
