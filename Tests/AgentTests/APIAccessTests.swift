import AgentAPI
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// TCP access needs the bearer token; the unix socket is root-only; the event stream streams.
@Suite(.serialized, .enabled(if: getuid() == 0, "needs root: agentd launches services"), .timeLimit(.minutes(5)))
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
        #expect(allowed.status == 200 && allowed.body.contains("\"api\":\"v1\""))
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
            process.terminate()
            process.waitUntilExit()
        }
        usleep(500_000)
        #expect(try agent.deployctl("apply", "-f", "manifests/batch.json", "--timeout", "60s").status == 0)
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        let handle = output.fileHandleForReading
        while Date() < deadline, !(text.contains("application.applied") && text.contains("completed")) {
            let data = handle.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
        }
        #expect(text.contains("application.applied") && text.contains("report") && text.contains("revision 1"), "\(text)")
        #expect(text.contains("instance.placed"))
        #expect(text.contains("completed"))
    }
}
