import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Client agents (`agentd --join HOST:PORT --token T` without `--server`) on loopback: they run
/// the instances placed on them from a copy of their assignment they follow from the servers,
/// relay the API to a server, keep running through the loss of every server, and are replaced
/// when they go silent. (The network-namespace version is in `NetnsClusterTests`.)
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct ClientAgentTests {
    /// A service pinned to `node`, `replicas` instances of a shell loop.
    static func pinned(_ name: String, to node: String, replicas: Int) -> String {
        """
        {"name": "\(name)", "services": [{"name": "loop", "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"],
          "replicas": \(replicas), "resources": {"cpu": 0.05, "memory": "8Mi"},
          "placement": {"constraints": [{"attribute": "node.name", "operator": "=", "value": "\(node)"}]}}]}
        """
    }

    /// The ids of running instances `agent` lists on `node`, from `deployctl status -o json`.
    static func running(_ agent: DevAgent, on node: String, application: String) throws -> [String: Int] {
        let output = try agent.deployctl("status", application, "-o", "json").output
        guard let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
            let instances = object["instances"] as? [[String: Any]]
        else { return [:] }
        var pids: [String: Int] = [:]
        for instance in instances where instance["node"] as? String == node && ["running", "healthy"].contains(instance["status"] as? String ?? "") {
            if let id = instance["id"] as? String { pids[id] = instance["mainPID"] as? Int ?? 0 }
        }
        return pids
    }

    /// A node's status word as `agent` lists it.
    static func nodeStatus(_ agent: DevAgent, _ name: String) throws -> String? {
        let output = try agent.deployctl("nodes", "-o", "json").output
        let nodes = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [[String: Any]] ?? []
        return nodes.first { $0["name"] as? String == name }?["status"] as? String
    }

    /// Server "alpha" (bootstrapped) and client "c1" joined to it, with `extra` for both; the
    /// server's cluster port and join token for more agents.
    static func serverAndClient(extra: [String] = []) throws -> (server: DevAgent, client: DevAgent, port: Int, token: String) {
        let port = try ClusterFormationTests.freePort()
        let server = try ClusterFormationTests.agent("alpha", port: port, extra: extra)
        do {
            let token = try ClusterFormationTests.joinToken(of: server)
            let client = try ClusterFormationTests.agent(
                "c1", port: try ClusterFormationTests.freePort(), joining: (port, token), client: true, extra: extra)
            return (server, client, port, token)
        } catch {
            server.shutdown()
            throw error
        }
    }

    static func isAlive(_ pid: Int) -> Bool { processIsRunning(Int32(pid)) }

    @Test("a second agent under a member's name from another address is refused while that member is up; once it is marked down the name can be taken")
    func aLiveMembersNameIsNotTakenOver() throws {
        let liveness = ["--heartbeat-interval", "500ms", "--node-down-timeout", "3s"]
        let (server, first, port, token) = try Self.serverAndClient(extra: liveness)
        var running = [server, first]
        defer { for agent in running { agent.shutdown() } }
        try server.waitUntil("c1 registered and up", timeout: 30) { try Self.nodeStatus(server, "c1") == "ready" }
        do {
            // A cloned host: the same name from another address.
            let clone = try ClusterFormationTests.agent("c1", port: try ClusterFormationTests.freePort(), joining: (port, token), client: true, extra: liveness)
            running.append(clone)
            Issue.record("a second client joined under the name of a client that is up")
        } catch {
            #expect("\(error)".contains("that is up; a second agent under its name"), "\(error)")
        }
        first.shutdown()
        try server.waitUntil("c1 marked down", timeout: 30) { try Self.nodeStatus(server, "c1") == "down" }
        // The host replaced, its state lost, at a new address: it takes its name (and id) back.
        let replacement = try ClusterFormationTests.agent(
            "c1", port: try ClusterFormationTests.freePort(), joining: (port, token), client: true, extra: liveness)
        running.append(replacement)
        try server.waitUntil("c1 up again", timeout: 30) { try Self.nodeStatus(server, "c1") == "ready" }
    }

    @Test("a removed client is cut off: the servers close its connections and refuse new ones though its certificate is still valid, and it relays the API no more")
    func aRemovedClientIsCutOff() throws {
        let (server, client, _, _) = try Self.serverAndClient()
        defer {
            client.shutdown()
            server.shutdown()
        }
        #expect(try client.deployctl("nodes").status == 0)
        let listed = try server.deployctl("cluster", "members", "-o", "json").output
        let members = try JSONSerialization.jsonObject(with: Data(listed.utf8)) as? [[String: Any]] ?? []
        let id = try #require(members.first { $0["name"] as? String == "c1" }?["id"] as? Int, "\(listed)")
        let removed = try server.deployctl("cluster", "remove-peer", "\(id)")
        #expect(removed.status == 0, "\(removed.output)\(removed.error)")
        try client.waitUntil("the client's relay refused", timeout: 20) { try client.deployctl("nodes").status != 0 }
        // Its calls were refused before (the servers check the caller's membership); now its
        // connections themselves are, and with them any Raft message it would send.
        #expect(server.agentLog().contains("which was removed from this cluster"), "\(server.agentLog())")
        // Still refused a few reconnections later.
        Thread.sleep(forTimeInterval: 3)
        #expect(try client.deployctl("nodes").status != 0)
    }

    @Test("a client runs what is placed on it, relays the API, keeps its services through the loss of every server and its own restart, and picks up changes when a server returns")
    func clientSurvivesTheLossOfEveryServer() throws {
        let (server, client, _, _) = try Self.serverAndClient()
        defer {
            client.shutdown()
            server.shutdown()
        }
        // The API on the client is the cluster's (relayed to a server); it lists it as a client.
        let members = try client.deployctl("cluster", "members").output
        #expect(members.contains("c1") && members.contains("client"), "\(members)")
        let applied = try client.deployctl("apply", "-f", "-", "--timeout", "60s", input: Self.pinned("pinned", to: "c1", replicas: 2))
        #expect(applied.status == 0, "\(applied.output)\(applied.error)\n\(client.agentLog())")
        var pids: [String: Int] = [:]
        try server.waitUntil("two instances running on the client", timeout: 30) {
            pids = try Self.running(server, on: "c1", application: "pinned")
            return pids.count == 2 && pids.values.allSatisfy(Self.isAlive)
        }

        // Every server gone: the client's services keep running, also after the client restarts.
        server.kill9()
        Thread.sleep(forTimeInterval: 2)
        #expect(pids.values.allSatisfy(Self.isAlive), "the client stopped its services when the servers went away")
        client.kill9()
        try client.startWithoutWaiting()
        Thread.sleep(forTimeInterval: 3)
        #expect(pids.values.allSatisfy(Self.isAlive), "a restarted client stopped its services while no server answered")
        #expect(client.agentLog().contains("running from the saved assignment"), "\(client.agentLog())")

        // The server returns on its state: the client reconnects and follows a change.
        try server.start()
        try client.waitUntil("the client's API answering again", timeout: 30) { try client.deployctl("nodes").status == 0 }
        let scaled = try client.deployctl("scale", "pinned/loop", "3")
        #expect(scaled.status == 0, "\(scaled.output)\(scaled.error)")
        try server.waitUntil("three instances running on the client", timeout: 30) {
            try Self.running(server, on: "c1", application: "pinned").count == 3
        }
        // The first two were never restarted.
        let now = try Self.running(server, on: "c1", application: "pinned")
        for (id, pid) in pids { #expect(now[id] == pid, "\(id) was restarted: \(pid) → \(now[id] ?? 0)") }
        #expect(try client.deployctl("delete", "pinned").status == 0)
    }

    /// A service pinned to `node` whose instances print a line naming the node, then wait.
    static func greeter(_ name: String, on node: String) -> String {
        """
        {"name": "\(name)", "services": [{"name": "hello", "command": ["/bin/sh", "-c", "echo hello from \(node); trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"],
          "replicas": 1, "resources": {"cpu": 0.05, "memory": "8Mi"},
          "placement": {"constraints": [{"attribute": "node.name", "operator": "=", "value": "\(node)"}]}}]}
        """
    }

    @Test("deployctl logs and events work against any agent, following included: a server reads a client's instance from the client, a client's request reaches a server's instance and its own, a client relays the event stream")
    func logsOfInstancesOnOtherNodes() throws {
        let (server, client, _, _) = try Self.serverAndClient()
        defer {
            client.shutdown()
            server.shutdown()
        }
        for (application, node) in [("on-client", "c1"), ("on-server", "alpha")] {
            let applied = try client.deployctl("apply", "-f", "-", "--timeout", "60s", input: Self.greeter(application, on: node))
            #expect(applied.status == 0, "\(applied.output)\(applied.error)")
        }
        var onClient = ""
        var onServer = ""
        try server.waitUntil("both instances running", timeout: 30) {
            onClient = try Self.running(server, on: "c1", application: "on-client").keys.first ?? ""
            onServer = try Self.running(server, on: "alpha", application: "on-server").keys.first ?? ""
            return !onClient.isEmpty && !onServer.isEmpty
        }
        for (agent, instance, line) in [
            (server, onClient, "hello from c1"), (client, onServer, "hello from alpha"), (client, onClient, "hello from c1"),
        ] {
            try agent.waitUntil("\(agent.nodeName) to show the output of \(instance)", timeout: 20) {
                let logs = try agent.deployctl("logs", instance)
                return logs.status == 0 && logs.output.contains(line)
            }
        }
        // Following, too: the server pulls the client's instance's output from the client; the
        // client relays follows of any instance, and the event stream, pulled from a server.
        _ = try server.following(["logs", "--follow", onClient], until: "hello from c1")
        _ = try client.following(["logs", "--follow", onServer], until: "hello from alpha")
        _ = try client.following(["logs", "--follow", onClient], until: "hello from c1")
        let events = try client.following(["events", "--follow"], until: "scaled to 2") {
            let scaled = try server.deployctl("scale", "on-server/hello", "2")
            #expect(scaled.status == 0, "\(scaled.output)\(scaled.error)")
        }
        #expect(events.contains("application.applied"), "the stream through the client did not start with the recent events: \(events)")
        // The readers are gone; the client's relayed streams must not hold its shutdown up
        // (a quiet follow would until the server's --max-query-wait, 5 minutes).
        let stopping = Date()
        client.terminate()
        #expect(Date().timeIntervalSince(stopping) < 30, "the client took \(Int(Date().timeIntervalSince(stopping))) s to stop")
    }

    @Test("a client that goes silent is marked down; its instance is replaced once the service's lostAfter has passed, not before, and stopped on the client when it returns")
    func aSilentClientsInstancesAreReplacedAfterTheGraceAndStoppedOnItsReturn() throws {
        let liveness = ["--heartbeat-interval", "500ms", "--node-down-timeout", "3s"]
        let (server, first, port, token) = try Self.serverAndClient(extra: liveness)
        defer {
            first.shutdown()
            server.shutdown()
        }
        let manifest = """
            {"name": "graced", "services": [{"name": "loop", "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"],
              "replicas": 1, "resources": {"cpu": 0.05, "memory": "8Mi"}, "disconnect": {"lostAfter": "6s"},
              "placement": {"constraints": [{"attribute": "node.name", "operator": "!=", "value": "alpha"}]}}]}
            """
        #expect(try server.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest).status == 0)
        var original: [String: Int] = [:]
        try server.waitUntil("the instance running on c1", timeout: 30) {
            original = try Self.running(server, on: "c1", application: "graced")
            return original.count == 1
        }
        let second = try ClusterFormationTests.agent("c2", port: try ClusterFormationTests.freePort(), joining: (port, token), client: true, extra: liveness)
        defer { second.shutdown() }

        // c1 freezes (its services run on): marked down after 3 s, its instance lost.
        let frozen = try #require(first.processIdentifier)
        // Running, or its pid may be another process's by now (a stopped one cannot end but by SIGKILL).
        try #require(first.isRunning, "c1 ended: \(first.agentLog())")
        kill(frozen, SIGSTOP)
        defer { kill(frozen, SIGCONT) }
        // Marked down before the read that saw it, after the one before: counted from the
        // start of the read that saw it (a read can take a second or two on a loaded machine).
        var lastReadStarted = Date()
        try server.waitUntil("c1 marked down", timeout: 20) {
            lastReadStarted = Date()
            return try Self.nodeStatus(server, "c1") == "down"
        }
        let markedDown = lastReadStarted
        // Within the 6 s grace nothing replaces it (looked at for 3 s of it: the mark may have
        // come up to a read's time before the read that saw it began).
        while Date().timeIntervalSince(markedDown) < 3 {
            #expect(try Self.running(server, on: "c2", application: "graced").isEmpty, "replaced within the grace")
            Thread.sleep(forTimeInterval: 0.5)
        }
        try server.waitUntil("the instance replaced on c2", timeout: 30) {
            try Self.running(server, on: "c2", application: "graced").count == 1
        }
        let (id, pid) = try #require(original.first)
        #expect(Self.isAlive(pid), "c1's process should still run while c1 is frozen")

        // c1 comes back: it stops the instance that was replaced, and the service runs once.
        kill(frozen, SIGCONT)
        try first.waitUntil("c1 stopping \(id)", timeout: 30) { !Self.isAlive(pid) }
        try server.waitUntil("c1 ready again", timeout: 20) { try Self.nodeStatus(server, "c1") == "ready" }
        #expect(try Self.running(server, on: "c1", application: "graced").isEmpty)
        #expect(try Self.running(server, on: "c2", application: "graced").count == 1)
    }

    @Test("heartbeats are not Raft entries: with a server and a client heartbeating twice a second, the log does not move while nothing changes")
    func heartbeatsLeaveTheLogAlone() throws {
        struct Status: Decodable { var index: Int }
        let liveness = ["--heartbeat-interval", "500ms", "--node-down-timeout", "3s"]
        let (server, client, _, _) = try Self.serverAndClient(extra: liveness)
        defer {
            client.shutdown()
            server.shutdown()
        }
        #expect(try server.deployctl("apply", "-f", "-", "--timeout", "60s", input: Self.pinned("quiet", to: "c1", replicas: 1)).status == 0)
        try server.waitUntil("the instance running", timeout: 30) { try Self.running(server, on: "c1", application: "quiet").count == 1 }
        Thread.sleep(forTimeInterval: 1)
        let before = try server.get("/v1/status", as: Status.self).index
        Thread.sleep(forTimeInterval: 5)
        let after = try server.get("/v1/status", as: Status.self).index
        #expect(after == before, "\(after - before) entries committed in 5 s with nothing changing")
        // And both nodes are still up: the heartbeats did arrive.
        #expect(try Self.nodeStatus(server, "c1") == "ready" && Self.nodeStatus(server, "alpha") == "ready")
    }

    @Test("deployctl nodes drain moves a node's instances off it; eligibility off keeps what runs and takes nothing new")
    func drainAndEligibility() throws {
        let (server, client, _, _) = try Self.serverAndClient()
        defer {
            client.shutdown()
            server.shutdown()
        }
        let manifest = """
            {"name": "movable", "services": [{"name": "loop", "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"],
              "replicas": 2, "resources": {"cpu": 0.05, "memory": "8Mi"}, "update": {"maxParallel": 1}}]}
            """
        #expect(try server.deployctl("nodes", "eligibility", "alpha", "off").status == 0)
        #expect(try Self.nodeStatus(server, "alpha") == "ineligible")
        #expect(try client.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest).status == 0)
        try server.waitUntil("both instances on c1 (alpha takes none)", timeout: 30) {
            try Self.running(server, on: "c1", application: "movable").count == 2
        }
        #expect(try Self.running(server, on: "alpha", application: "movable").isEmpty)
        // Drain c1 with alpha eligible again: both move, one at a time, and c1 ends empty.
        #expect(try server.deployctl("nodes", "eligibility", "alpha", "on").status == 0)
        let drained = try client.deployctl("nodes", "drain", "c1", "--deadline", "5m")
        #expect(drained.status == 0 && drained.output.contains("c1 is draining"), "\(drained.output)\(drained.error)")
        #expect(try Self.nodeStatus(server, "c1") == "draining")
        try server.waitUntil("both instances moved to alpha", timeout: 60) {
            try Self.running(server, on: "alpha", application: "movable").count == 2 && Self.running(server, on: "c1", application: "movable").isEmpty
        }
        #expect(try server.deployctl("nodes", "drain", "c1", "--disable").status == 0)
        #expect(try Self.nodeStatus(server, "c1") == "ready")
        let unknown = try server.deployctl("nodes", "drain", "nowhere")
        #expect(unknown.status != 0 && (unknown.output + unknown.error).contains("nowhere"), "\(unknown)")
    }
}
