import Foundation
import NetnsHarness
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Three agentd servers on three hosts (network namespaces on a bridge): a host cut off from
/// the others cannot commit while the two can, and after healing all three agree.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
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

        func deployctl(_ arguments: [String], timeout: TimeInterval = 60, input: String? = nil) throws -> (status: Int32, output: String) {
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
            let inputPipe = Pipe()
            process.standardInput = inputPipe
            try process.run()
            if let input { inputPipe.fileHandleForWriting.write(Data(input.utf8)) }
            try inputPipe.fileHandleForWriting.close()
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

    /// The host the leader runs on, as the first of `agents` that answers sees it: Raft ids
    /// follow the order joins were admitted in, not host numbers, so the leader's id is looked
    /// up in the member list (node names are `h<host>`).
    static func leaderHost(_ agents: [Server]) -> Int? {
        struct Member: Decodable {
            var id: Int
            var name: String
        }
        for agent in agents {
            guard let leader = try? agent.status().leader, let id = Int(leader), id != 0,
                let (code, body) = try? UnixHTTP.request("GET", "/v1/cluster/members", socket: agent.socket), code == 200,
                let members = try? JSONDecoder().decode([Member].self, from: Data(body.utf8)),
                let name = members.first(where: { $0.id == id })?.name, name.hasPrefix("h")
            else { continue }
            return Int(name.dropFirst())
        }
        return nil
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

    /// Hosts `1...servers` run servers (host 1 bootstraps, the others join with `--server`),
    /// the next `clients` hosts run clients; returns once every agent lists every node and the
    /// servers are voters. `extra` goes to every agent.
    static func form(
        _ network: HostNetwork, _ agents: [Server], servers serverCount: Int, extra: [String] = []
    ) throws {
        for agent in agents {
            try FileManager.default.createDirectory(atPath: agent.directory, withIntermediateDirectories: true)
            _ = FileManager.default.createFile(atPath: agent.directory + "/deployctl.out", contents: nil)
        }
        func start(_ agent: Server, _ role: [String]) throws {
            let address = try network.address(of: agent.host)
            let low = 20_000 + agent.host * 1_000  // below the kernel's ephemeral ports (32768-60999)
            try network.start(
                host: agent.host,
                arguments: [
                    DevAgent.binDirectory.appendingPathComponent("agentd").path, "--state-dir", agent.directory + "/state",
                    "--api-socket", agent.socket, "--cgroup-parent", agent.cgroupParent, "--port-range", "\(low)-\(low + 999)",
                    "--node-name", "h\(agent.host)", "--advertise", "\(address):4647", "--log-level", "info",
                ] + role + extra,
                logPath: agent.directory + "/agentd.log")
        }
        try start(agents[0], ["--bootstrap"])
        try Self.waitUntil("the first server's API") {
            let nodes = try agents[0].deployctl(["nodes"], timeout: 10)
            return nodes.status == 0 && nodes.output.contains("ready")
        }
        let token = try String(contentsOfFile: agents[0].directory + "/state/cluster/join-token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let first = try network.address(of: 1)
        for (position, agent) in agents.enumerated().dropFirst() {
            try start(agent, (position < serverCount ? ["--server"] : []) + ["--join", "\(first):4647", "--token", token])
        }
        let names = agents.map { "h\($0.host) " }
        for agent in agents {
            do {
                try Self.waitUntil("host \(agent.host) to list every node", timeout: 60) {
                    let nodes = try agent.deployctl(["nodes"], timeout: 10)
                    return nodes.status == 0 && names.allSatisfy { nodes.output.contains($0) }
                }
            } catch {
                throw TestFailure("\(error)\n" + agents.map { "host \($0.host):\n\($0.log)" }.joined(separator: "\n"))
            }
        }
        // Joined servers are learners until the leader promotes them; a cut before that would
        // leave learners, which cannot elect.
        try Self.waitUntil("\(serverCount) voters", timeout: 60) {
            try agents[0].deployctl(["cluster", "members"], timeout: 10).output.components(separatedBy: "voter").count - 1 == serverCount
        }
    }

    /// Builds `count` hosts' agents and removes everything they leave when the test ends.
    static func agents(_ count: Int) -> (root: String, agents: [Server]) {
        let id = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let root = "/tmp/flotilla-netns-e2e-\(id)"
        return (root, (1...count).map { Server(host: $0, directory: root + "/h\($0)", cgroupParent: "flotilla-nse-\(id)-h\($0)") })
    }

    static func cleanUp(_ network: HostNetwork, root: String, _ agents: [Server]) {
        try? network.shutdown()
        // FLOTILLA_KEEP_LOGS=DIR keeps each agent's log, for reading a failure after the fact.
        if let keep = ProcessInfo.processInfo.environment["FLOTILLA_KEEP_LOGS"] {
            for agent in agents {
                try? FileManager.default.copyItem(atPath: agent.directory + "/agentd.log", toPath: keep + "/\(root.split(separator: "/").last ?? "")-h\(agent.host).log")
            }
        }
        for agent in agents {
            CgroupCleanup.killAndRemove(parent: agent.cgroupParent)
            Mounts.unmountAll(under: agent.directory)
        }
        try? FileManager.default.removeItem(atPath: root)
    }

    @Test("a host cut off cannot commit while the other two can; healed, all three agree")
    func aCutOffMinorityCannotCommit() throws {
        let network = try HostNetwork(hostCount: 3)
        let (root, servers) = Self.agents(3)
        defer { Self.cleanUp(network, root: root, servers) }
        try Self.form(network, servers, servers: 3)
        let applied = try servers[1].deployctl(["apply", "-f", "manifests/worker.json", "--no-wait"])
        #expect(applied.status == 0, "\(applied.output)")

        // Cut the leader off: the two others elect one of themselves and commit.
        let oldLeader = try #require(Self.leaderHost(servers))
        let cut = servers[oldLeader - 1]
        let majority = servers.filter { $0.host != oldLeader }
        try network.cut(host: oldLeader)
        do {
            try Self.waitUntil("a new leader among the two") {
                let leader = Self.leaderHost(majority)
                return leader != nil && leader != oldLeader
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
