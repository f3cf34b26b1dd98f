import Foundation
import Testing
import TestSupport

/// Servers started with `--bootstrap-expect 3` on loopback: they find one another through
/// the addresses they were given (each only the next one's), wait until all three are there,
/// and start together as voters, over mutual TLS with the operator's CA from the first byte.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct BootstrapExpectTests {
    struct Member: Decodable {
        var id: Int
        var name: String
        var role: String
        var leader: Bool
    }

    /// `deployctl cluster ca create --out DIR` in a new temporary directory; the directory
    /// and the token.
    static func makeCA() throws -> (directory: String, token: String) {
        let directory = NSTemporaryDirectory() + "flotilla-ca-\(UInt32.random(in: 0...UInt32.max))"
        let (status, text) = try run("deployctl", ["cluster", "ca", "create", "--out", directory])
        guard status == 0 else { throw TestFailure("deployctl cluster ca create: \(text)") }
        let token = try String(contentsOfFile: directory + "/join-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(text.contains(token))
        return (directory, token)
    }

    /// Runs one of the built tools to its end; its exit status and what it printed (both streams).
    static func run(_ tool: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = DevAgent.binDirectory.appendingPathComponent(tool)
        process.arguments = arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return (process.terminationStatus, text)
    }

    static func forming(_ name: String, port: Int, expect: Int = 3, joining others: [Int], ca: String) throws -> DevAgent {
        try DevAgent(
            nodeName: name, dev: false,
            extraArguments: ["--advertise", "127.0.0.1:\(port)", "--cluster-listen", "127.0.0.1:\(port)", "--bootstrap-expect", "\(expect)", "--ca-dir", ca]
                + others.flatMap { ["--join", "127.0.0.1:\($0)"] },
            waits: false)
    }

    static func members(_ agent: DevAgent) throws -> [Member] {
        let listed = try agent.deployctl("cluster", "members", "-o", "json")
        guard listed.status == 0 else { throw TestFailure("cluster members: \(listed.output)\(listed.error)") }
        return try JSONDecoder().decode([Member].self, from: Data(listed.output.utf8))
    }

    /// Waits for `agent`'s process to end; its log.
    static func exitLog(_ agent: DevAgent, within seconds: TimeInterval) throws -> String {
        let deadline = Date().addingTimeInterval(seconds)
        while agent.process?.isRunning == true, Date() < deadline { usleep(100_000) }
        guard agent.process?.isRunning == false else { throw TestFailure("\(agent.nodeName) still runs after \(Int(seconds)) s: \(agent.agentLog())") }
        return agent.agentLog()
    }

    @Test("three servers with --bootstrap-expect 3 wait for one another, then form one cluster of three voters with ids by name; clients join with the operator's token; a restart keeps the formation; a fourth server is told it was left out")
    func threeServersFormTogether() throws {
        let (ca, token) = try Self.makeCA()
        defer { try? FileManager.default.removeItem(atPath: ca) }
        let ports = try (0..<3).map { _ in try ClusterFormationTests.freePort() }
        var agents: [DevAgent] = []
        defer { for agent in agents { agent.shutdown() } }
        // gamma first, alone: it must wait, not start a cluster of one.
        agents.append(try Self.forming("gamma", port: ports[2], joining: [ports[0]], ca: ca))
        sleep(2)
        #expect(agents[0].process?.isRunning == true, "\(agents[0].agentLog())")
        #expect(!FileManager.default.fileExists(atPath: agents[0].socket), "gamma serves its API before the cluster formed")
        #expect(!FileManager.default.fileExists(atPath: agents[0].stateDirectory + "/state/cluster/member"))
        agents.append(try Self.forming("alpha", port: ports[0], joining: [ports[1]], ca: ca))
        agents.append(try Self.forming("beta", port: ports[1], joining: [ports[2]], ca: ca))
        for agent in agents { try agent.waitUntilAnswering(timeout: 60) }
        // Every server lists the same three voters, ids by name, and one leader.
        for agent in agents {
            try agent.waitUntil("\(agent.nodeName) to list the three formed servers", timeout: 30) {
                let members = try Self.members(agent)
                return members.map { "\($0.id)=\($0.name)/\($0.role)" } == ["1=alpha/voter", "2=beta/voter", "3=gamma/voter"]
                    && members.filter(\.leader).count == 1
            }
            #expect(agent.agentLog().contains("formed the cluster"))
        }
        // Every server holds the operator's CA and token; a client joins through any of them.
        for agent in agents {
            try agent.waitUntil("\(agent.nodeName) to show the operator's token", timeout: 30) {
                try agent.deployctl("cluster", "token").output.trimmingCharacters(in: .whitespacesAndNewlines) == token
            }
        }
        let clientPort = try ClusterFormationTests.freePort()
        let client = try DevAgent(
            nodeName: "delta-client", dev: false,
            extraArguments: ["--advertise", "127.0.0.1:\(clientPort)", "--join", "127.0.0.1:\(ports[2])", "--token", token])
        agents.append(client)
        try agents[1].waitUntil("the client to be a member", timeout: 30) {
            try Self.members(agents[1]).contains { $0.name == "delta-client" && $0.role == "client" && $0.id == 4 }
        }
        // A server restarted comes back on its state: no new formation, the same three voters.
        let beta = agents[2]
        beta.terminate()
        try beta.start()
        #expect(!beta.agentLog().contains("forming a new cluster") && beta.agentLog().contains("cluster identity loaded"), "\(beta.agentLog())")
        try beta.waitUntil("beta to see three voters again", timeout: 30) {
            try Self.members(beta).filter { $0.role == "voter" }.map(\.name) == ["alpha", "beta", "gamma"]
        }
        // A fourth server expecting three, after the formation: told it was left out, and how to join.
        let late = try Self.forming("epsilon", port: try ClusterFormationTests.freePort(), joining: [ports[0]], ca: ca)
        agents.append(late)
        let log = try Self.exitLog(late, within: 30)
        #expect(log.contains("was formed by alpha, beta, gamma without this server") && log.contains("--token"), "\(log)")
        #expect(late.process?.terminationStatus != 0)
    }

    @Test("--bootstrap-expect is refused, saying why, without a CA directory, with a count over 5, with --token, or without the others' addresses; from the configuration file too, where every option can be given")
    func badFormationFlagsAreRefused() throws {
        let (ca, _) = try Self.makeCA()
        defer { try? FileManager.default.removeItem(atPath: ca) }
        let cases: [([String], String)] = [
            (["--bootstrap-expect", "3", "--join", "127.0.0.1:1"], "--bootstrap-expect needs --ca-dir"),
            (["--bootstrap-expect", "7", "--ca-dir", ca, "--join", "127.0.0.1:1"], "give 1 to 5"),
            (["--bootstrap-expect", "3", "--ca-dir", ca, "--join", "127.0.0.1:1", "--token", "x"], "forming servers take the token in --ca-dir"),
            (["--bootstrap-expect", "3", "--ca-dir", ca], "needs --join HOST:PORT of the other servers"),
            (["--bootstrap-expect", "3", "--bootstrap", "--ca-dir", ca, "--join", "127.0.0.1:1"], "give one of them"),
            (["--ca-dir", ca], "--ca-dir is for --bootstrap-expect"),
        ]
        // The same options from the configuration file, and the ones only the file used to lack.
        let configuration = NSTemporaryDirectory() + "flotilla-config-\(UInt32.random(in: 0...UInt32.max)).json"
        defer { try? FileManager.default.removeItem(atPath: configuration) }
        let fileCases: [(String, String)] = [
            (#"{"bootstrapExpect": 3, "join": ["127.0.0.1:1"]}"#, "--bootstrap-expect needs --ca-dir"),
            (#"{"bootstrapExpect": 9, "caDirectory": "\#(ca)", "join": "127.0.0.1:1"}"#, "give 1 to 5"),
            (#"{"logLevel": "loud"}"#, "log level loud: give one of"),
            (#"{"maxQueryWait": "0s"}"#, "give a duration above zero"),
            (#"{"cgroupParent": 5}"#, "cgroupParent"),
        ]
        for (text, message) in fileCases {
            try text.write(toFile: configuration, atomically: true, encoding: .utf8)
            let (status, printed) = try Self.run("agentd", ["--config", configuration, "--state-dir", NSTemporaryDirectory() + "flotilla-unused"])
            #expect(status != 0 && printed.contains(message), "\(text): \(printed)")
        }
        for (arguments, message) in cases {
            let (status, text) = try Self.run(
                "agentd", ["--state-dir", NSTemporaryDirectory() + "flotilla-unused", "--api-socket", NSTemporaryDirectory() + "flotilla-unused.sock"] + arguments)
            #expect(status != 0 && text.contains(message), "\(arguments): \(text)")
        }
    }
}
