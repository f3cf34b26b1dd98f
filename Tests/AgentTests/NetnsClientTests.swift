import Foundation
import NetnsHarness
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Three servers and two clients on five hosts (network namespaces on a bridge), and a
/// five-server cluster: the failures of issue 13 with real agents, services and links.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct NetnsClientTests {
    typealias Cluster = NetnsClusterTests

    static let liveness = ["--heartbeat-interval", "500ms", "--node-down-timeout", "3s"]

    /// Running instances by id: their node and main pid, from `deployctl status APP -o json`.
    static func running(_ agent: NetnsClusterTests.Server, _ application: String) throws -> [String: (node: String, pid: Int)] {
        let output = try agent.deployctl(["status", application, "-o", "json"], timeout: 10).output
        guard let object = try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any],
            let instances = object["instances"] as? [[String: Any]]
        else { return [:] }
        var found: [String: (node: String, pid: Int)] = [:]
        for instance in instances where ["running", "healthy"].contains(instance["status"] as? String ?? "") {
            if let id = instance["id"] as? String, let node = instance["node"] as? String { found[id] = (node, instance["mainPID"] as? Int ?? 0) }
        }
        return found
    }

    static func leader(_ agents: [NetnsClusterTests.Server]) -> Int? { Cluster.leaderHost(agents) }

    static let spread = """
        {"name": "spread", "services": [{"name": "loop", "command": ["/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"],
          "replicas": 4, "resources": {"cpu": 0.05, "memory": "8Mi"}, "disconnect": {"lostAfter": "8s"},
          "placement": {"distinctNodes": true}}]}
        """

    @Test("3 servers + 2 clients: the work spreads over all; kill -9 of the leader and a restart of every agent restart no service; a client cut off has its instance replaced after the grace")
    func serversAndClientsSurviveFailures() throws {
        let network = try HostNetwork(hostCount: 5)
        let (root, agents) = Cluster.agents(5)
        defer { Cluster.cleanUp(network, root: root, agents) }
        try Cluster.form(network, agents, servers: 3, extra: Self.liveness)
        let members = try agents[4].deployctl(["cluster", "members"]).output
        #expect(members.components(separatedBy: "client").count - 1 == 2, "\(members)")

        let applied = try agents[3].deployctl(["apply", "-f", "-", "--timeout", "60s"], input: Self.spread)
        #expect(applied.status == 0, "\(applied.output)")
        var instances: [String: (node: String, pid: Int)] = [:]
        try Cluster.waitUntil("four instances on four nodes", timeout: 60) {
            instances = try Self.running(agents[0], "spread")
            return instances.count == 4 && Set(instances.values.map(\.node)).count == 4
        }
        func unchanged(_ when: String) throws {
            var now: [String: (node: String, pid: Int)] = [:]
            try Cluster.waitUntil("the instances reported \(when)", timeout: 30) {
                now = try Self.running(agents[0], "spread")
                return now.count == 4
            }
            for (id, before) in instances {
                #expect(now[id]?.pid == before.pid, "\(id) restarted \(when): \(before.pid) → \(now[id]?.pid ?? 0)")
            }
        }

        // kill -9 of the leader (the agent alone: its services run on): a new leader commits.
        // It is back within the node-down timeout plus the service's grace (3 s + 8 s).
        let oldLeader = try #require(Self.leader(agents))
        try network.kill9(host: oldLeader, alone: true)
        let survivors = agents.filter { $0.host != oldLeader }
        try Cluster.waitUntil("a new leader", timeout: 20) { (Self.leader(survivors) ?? oldLeader) != oldLeader }
        try network.restart(host: oldLeader)
        let write = try survivors[3].deployctl(["apply", "-f", "manifests/batch.json", "--no-wait"], timeout: 30)
        #expect(write.status == 0, "a write after the failover: \(write.output)")
        try unchanged("after kill -9 of the leader")

        // Every agent restarted on its state, one after the other: no service restarts.
        for agent in agents {
            try network.restart(host: agent.host, alone: true)
            try Cluster.waitUntil("host \(agent.host) answering again", timeout: 30) {
                try agent.deployctl(["nodes"], timeout: 10).status == 0
            }
        }
        try unchanged("after every agent restarted")

        // A client with an instance cut off: marked down, its instance replaced after the 8 s
        // grace on the one free node; healed, it stops its copy.
        let (lostID, lost) = try #require(instances.first { $0.value.node == "h4" || $0.value.node == "h5" })
        let clientHost = lost.node == "h4" ? 4 : 5
        try network.cut(host: clientHost)
        try Cluster.waitUntil("\(lostID) replaced on another node", timeout: 40) {
            let now = try Self.running(agents[0], "spread")
            return now[lostID] == nil && now.count == 4 && !now.values.contains { $0.node == lost.node }
        }
        #expect(processIsRunning(Int32(lost.pid)), "the cut-off client's process should still run")
        try network.heal(host: clientHost)
        let client = try #require(agents.first { $0.host == clientHost })
        do {
            try Cluster.waitUntil("the healed client h\(clientHost) to stop its replaced copy", timeout: 90) {
                !processIsRunning(Int32(lost.pid))
            }
        } catch {
            // What the servers think, for whoever reads this: the node's status and the
            // instances, then the leader's log.
            let nodes = (try? agents[0].deployctl(["nodes"], timeout: 10).output) ?? "?"
            let status = (try? agents[0].deployctl(["status", "spread", "-o", "json"], timeout: 10).output) ?? "?"
            let leaderLog = Self.leader(agents).flatMap { host in agents.first { $0.host == host }?.log } ?? "?"
            Issue.record(
                "\(error)\nthe client's log, its end:\n\(client.log)\nnodes:\n\(nodes)\nstatus:\n\(status)\nthe leader's log, its end:\n\(leaderLog)")
        }
        #expect(try agents[0].deployctl(["delete", "spread"]).status == 0)
    }

    @Test("a client agent's instance gets its keys from the node's assignment, and is replaced with the new value when a key changes")
    func aClientsInstanceGetsItsKeys() throws {
        let network = try HostNetwork(hostCount: 4)
        let (root, agents) = Cluster.agents(4)
        defer { Cluster.cleanUp(network, root: root, agents) }
        try Cluster.form(network, agents, servers: 3, extra: Self.liveness)
        #expect(try UnixHTTP.request("PUT", "/v1/kv/greeter/greeting", body: "hello", socket: agents[1].socket).status == 200)
        let manifest = """
            {"name": "greeter", "services": [{"name": "web",
              "command": ["/bin/sh", "-c", "echo \\"greeting=$GREETING\\"; trap 'exit 0' TERM; while true; do sleep 1 & wait $!; done"],
              "kv": [{"key": "greeter/greeting", "env": "GREETING"}], "resources": {"cpu": 0.05, "memory": "8Mi"},
              "placement": {"constraints": [{"attribute": "node.name", "operator": "=", "value": "h4"}]}}]}
            """
        let applied = try agents[0].deployctl(["apply", "-f", "-", "--timeout", "60s"], input: manifest)
        #expect(applied.status == 0, "\(applied.output)")
        var first: [String: (node: String, pid: Int)] = [:]
        try Cluster.waitUntil("the instance on the client to print the key's value", timeout: 60) {
            first = try Self.running(agents[0], "greeter")
            guard first.count == 1, first.values.first?.node == "h4" else { return false }
            return try agents[0].deployctl(["logs", "greeter/web"], timeout: 10).output.contains("greeting=hello")
        }
        #expect(try UnixHTTP.request("PUT", "/v1/kv/greeter/greeting", body: "bonjour", socket: agents[2].socket).status == 200)
        try Cluster.waitUntil("a new instance on the client with the new value", timeout: 60) {
            let now = try Self.running(agents[0], "greeter")
            guard now.count == 1, let id = now.keys.first, first[id] == nil else { return false }
            return try agents[0].deployctl(["logs", id], timeout: 10).output.contains("greeting=bonjour")
        }
    }

    @Test("5 servers: five voters; two cut off cannot commit while the three can; healed, all five agree")
    func fiveServersLoseTwo() throws {
        let network = try HostNetwork(hostCount: 5)
        let (root, agents) = Cluster.agents(5)
        defer { Cluster.cleanUp(network, root: root, agents) }
        try Cluster.form(network, agents, servers: 5)
        let leader = try #require(Self.leader(agents))
        let cut = [leader, leader % 5 + 1]
        let majority = agents.filter { !cut.contains($0.host) }
        for host in cut { try network.cut(host: host) }
        do {
            try Cluster.waitUntil("a leader among the three", timeout: 45) {
                let now = Self.leader(majority)
                return now.map { !cut.contains($0) } ?? false
            }
        } catch {
            throw TestFailure("\(error) (cut \(cut))\n" + agents.map { "host \($0.host):\n\($0.log)" }.joined(separator: "\n"))
        }
        let written = try majority[2].deployctl(["apply", "-f", "manifests/batch.json", "--no-wait"], timeout: 30)
        #expect(written.status == 0, "\(written.output)")
        let minority = try agents[cut[0] - 1].deployctl(["delete", "report"], timeout: 10)
        #expect(minority.status != 0, "a cut-off minority committed: \(minority.output)")
        for host in cut { try network.heal(host: host) }
        for agent in agents {
            try Cluster.waitUntil("host \(agent.host) to agree", timeout: 45) {
                let status = try agent.deployctl(["status", "-o", "json"], timeout: 10).output
                return status.contains("\"report\"") && Self.leader([agent]) == Self.leader(majority)
            }
        }
    }
}
