import Foundation
import NetnsHarness
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Three agentd servers on three hosts (network namespaces on a bridge): a host cut off from
/// the others cannot commit while the two can, and after healing all three agree.
@Suite(.dedicatedThread, .timeLimit(.minutes(5)))
struct NetnsClusterTests {
    struct Status: Decodable {
        var leader: String
        var term: Int
    }

    /// One server's files and API socket; the process runs in its host's namespace.
    struct Server {
        let host: Int
        let directory: String
        let cgroupParent: String
        var socket: String { directory + "/api.sock" }

        func deployctl(_ arguments: [String], timeout: TimeInterval = 60) throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = DevAgent.binDirectory.appendingPathComponent("deployctl")
            process.arguments = arguments
            process.currentDirectoryURL = URL(fileURLWithPath: DevAgent.repositoryRoot)
            var environment = ProcessInfo.processInfo.environment
            environment["FLOTILLA_ADDR"] = socket
            environment["NO_COLOR"] = "1"
            process.environment = environment
            let output = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/deployctl.out"))
            try output.truncate(atOffset: 0)
            process.standardOutput = output
            process.standardError = output
            try process.run()
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning, Date() < deadline { usleep(50_000) }
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                return (-1, "still running after \(timeout) s")
            }
            let text = (try? String(contentsOfFile: directory + "/deployctl.out", encoding: .utf8)) ?? ""
            return (process.terminationStatus, text)
        }

        func status() throws -> Status {
            let (code, body) = try UnixHTTP.request("GET", "/v1/status", socket: socket)
            guard code == 200 else { throw TestFailure("GET /v1/status on host \(host) answered \(code): \(body)") }
            return try JSONDecoder().decode(Status.self, from: Data(body.utf8))
        }

        var log: String { (try? String(contentsOfFile: directory + "/agentd.log", encoding: .utf8)).map { String($0.suffix(3000)) } ?? "" }
    }

    static func waitUntil(_ what: String, timeout: TimeInterval = 30, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var last: (any Error)?
        while Date() < deadline {
            do {
                if try condition() { return }
            } catch {
                last = error
            }
            usleep(200_000)
        }
        throw TestFailure("timed out waiting for \(what)\(last.map { " (last error: \($0))" } ?? "")")
    }

    @Test("a host cut off cannot commit while the other two can; healed, all three agree")
    func aCutOffMinorityCannotCommit() throws {
        let network = try HostNetwork(hostCount: 3)
        let id = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let root = "/tmp/flotilla-netns-e2e-\(id)"
        let servers = (1...3).map { Server(host: $0, directory: root + "/h\($0)", cgroupParent: "flotilla-nse-\(id)-h\($0)") }
        defer {
            try? network.shutdown()
            for server in servers {
                CgroupCleanup.killAndRemove(parent: server.cgroupParent)
                Mounts.unmountAll(under: server.directory)
            }
            try? FileManager.default.removeItem(atPath: root)
        }
        func start(_ server: Server, _ extra: [String]) throws {
            try FileManager.default.createDirectory(atPath: server.directory, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: server.directory + "/deployctl.out", contents: nil)
            let address = try network.address(of: server.host)
            let low = 30_000 + server.host * 1_000
            try network.start(
                host: server.host,
                arguments: [
                    DevAgent.binDirectory.appendingPathComponent("agentd").path, "--state-dir", server.directory + "/state",
                    "--api-socket", server.socket, "--cgroup-parent", server.cgroupParent, "--port-range", "\(low)-\(low + 999)",
                    "--node-name", "h\(server.host)", "--advertise", "\(address):4647", "--log-level", "info",
                ] + extra,
                logPath: server.directory + "/agentd.log")
        }
        try start(servers[0], ["--bootstrap"])
        try Self.waitUntil("the first server's API") {
            let nodes = try servers[0].deployctl(["nodes"], timeout: 10)
            return nodes.status == 0 && nodes.output.contains("ready")
        }
        let token = try String(contentsOfFile: servers[0].directory + "/state/cluster/join-token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let first = try network.address(of: 1)
        for server in servers.dropFirst() { try start(server, ["--server", "--join", "\(first):4647", "--token", token]) }
        for server in servers {
            do {
                try Self.waitUntil("host \(server.host) to list three nodes") {
                    let nodes = try server.deployctl(["nodes"], timeout: 10)
                    return nodes.status == 0 && ["h1 ", "h2 ", "h3 "].allSatisfy { nodes.output.contains($0) }
                }
            } catch {
                throw TestFailure("\(error)\n" + servers.map { "host \($0.host):\n\($0.log)" }.joined(separator: "\n"))
            }
        }
        // Joined servers are learners until the leader promotes them; a cut before that would
        // leave two learners, which cannot elect.
        try Self.waitUntil("three voters") {
            try servers[0].deployctl(["cluster", "members"], timeout: 10).output.components(separatedBy: "voter").count - 1 == 3
        }
        let applied = try servers[1].deployctl(["apply", "-f", "manifests/worker.json", "--no-wait"])
        #expect(applied.status == 0, "\(applied.output)")

        // Cut the leader off: the two others elect one of themselves and commit.
        let oldLeader = try #require(Int(try servers[0].status().leader))
        let cut = servers[oldLeader - 1]
        let majority = servers.filter { $0.host != oldLeader }
        try network.cut(host: oldLeader)
        do {
            try Self.waitUntil("a new leader among the two") {
                let leader = try majority[0].status().leader
                return leader != "\(oldLeader)" && leader != "0"
            }
        } catch {
            throw TestFailure("\(error) (cut host \(oldLeader))\n" + servers.map { "host \($0.host):\n\($0.log)" }.joined(separator: "\n"))
        }
        let scaled = try majority[1].deployctl(["scale", "worker/ticker", "3"])
        #expect(scaled.status == 0, "\(scaled.output)")
        // The cut-off host cannot commit: its write fails or never completes, and never lands.
        let minority = try cut.deployctl(["scale", "worker/ticker", "7"], timeout: 10)
        #expect(minority.status != 0, "a cut-off minority committed: \(minority.output)")
        print("minority write: \(minority.status) \(minority.output)")

        try network.heal(host: oldLeader)
        for server in servers {
            try Self.waitUntil("host \(server.host) to converge\n\(server.log)", timeout: 45) {
                let leader = try server.status().leader
                let majorityLeader = try majority[0].status().leader
                let status = try server.deployctl(["status", "-o", "json"], timeout: 10).output
                return leader != "0" && leader == majorityLeader && status.contains("\"replicas\" : 3") && !status.contains("\"replicas\" : 7")
            }
        }
        let deleted = try majority[0].deployctl(["delete", "worker"])
        #expect(deleted.status == 0, "\(deleted.output)")
    }
}
