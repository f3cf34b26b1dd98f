import Foundation
import Synchronization
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Three real agentd servers on loopback forming a cluster over mutual TLS: the first
/// bootstraps, the others join with its token; writes sent to followers are forwarded to the
/// leader; kill -9 of the leader leaves the other two committing; the killed one comes back
/// on its state. (The network-namespace version of these is the next step of issue 13.)
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct ClusterFormationTests {
    struct Status: Decodable {
        var leader: String
        var term: Int
    }

    /// Ports handed out in this test process: the kernel may offer a port again as soon as it
    /// is closed, and tests running side by side would then start two agents on one port.
    static let handedOut = Mutex<Set<Int>>([])

    /// A TCP port nothing listens on right now, and not handed to another test of this run.
    static func freePort() throws -> Int {
        for _ in 0..<100 {
            let port = try unusedPort()
            if handedOut.withLock({ $0.insert(port).inserted }) { return port }
        }
        throw TestFailure("no free port that was not handed out already")
    }

    private static func unusedPort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw TestFailure("no free port: errno \(errno)") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// The join token the bootstrapped `server` wrote.
    static func joinToken(of server: DevAgent) throws -> String {
        try String(contentsOfFile: server.stateDirectory + "/state/cluster/join-token", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Servers alpha (bootstrapped), beta and gamma, appended to `agents` as they start (so the
    /// caller's cleanup has them even if one fails), once all three are voters; their cluster
    /// ports and the join token.
    static func threeVoters(extra: [String] = [], into agents: inout [DevAgent]) throws -> (ports: [Int], token: String) {
        let ports = try (0..<3).map { _ in try freePort() }
        agents.append(try server("alpha", port: ports[0], extra: extra))
        let token = try joinToken(of: agents[0])
        agents.append(try server("beta", port: ports[1], joining: (ports[0], token), extra: extra))
        agents.append(try server("gamma", port: ports[2], joining: (ports[0], token), extra: extra))
        let first = agents[0]
        try first.waitUntil("three voters", timeout: 30) {
            try first.deployctl("cluster", "members").output.components(separatedBy: "voter").count - 1 == 3
        }
        return (ports, token)
    }

    static func server(_ name: String, port: Int, joining first: (port: Int, token: String)? = nil, extra: [String] = []) throws -> DevAgent {
        try agent(name, port: port, joining: first, extra: extra)
    }

    /// A server (bootstrapping without `first`), or with `client` a client joining through `first`.
    static func agent(_ name: String, port: Int, joining first: (port: Int, token: String)? = nil, client: Bool = false, extra: [String] = []) throws -> DevAgent {
        var arguments = ["--advertise", "127.0.0.1:\(port)", "--cluster-listen", "127.0.0.1:\(port)"] + extra
        if let first {
            arguments += (client ? [] : ["--server"]) + ["--join", "127.0.0.1:\(first.port)", "--token", first.token]
        } else {
            arguments += ["--bootstrap"]
        }
        return try DevAgent(nodeName: name, dev: false, extraArguments: arguments)
    }

    @Test("three servers form a cluster and become voters; the token is shown and rotated; followers forward writes; kill -9 of the leader; the killed one rejoins on its state")
    func threeServersFormAndSurviveTheLeader() throws {
        let ports = try (0..<3).map { _ in try Self.freePort() }
        var agents: [DevAgent] = []
        defer { for agent in agents { agent.shutdown() } }
        let first = try Self.server("alpha", port: ports[0])
        agents.append(first)
        let tokenPath = first.stateDirectory + "/state/cluster/join-token"
        let token = try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(try FileManager.default.attributesOfItem(atPath: tokenPath)[.posixPermissions] as? Int == 0o600)
        agents.append(try Self.server("beta", port: ports[1], joining: (ports[0], token)))
        agents.append(try Self.server("gamma", port: ports[2], joining: (ports[0], token)))
        // Every agent sees all three nodes: the joined ones registered through the leader.
        for agent in agents {
            try agent.waitUntil("\(agent.nodeName) to list the three nodes", timeout: 30) {
                let nodes = try agent.deployctl("nodes").output
                return ["alpha", "beta", "gamma"].allSatisfy { nodes.contains($0) }
            }
        }
        // All three become voters (promoted once caught up); exactly one leads.
        try agents[2].waitUntil("three voters", timeout: 30) {
            let members = try agents[2].deployctl("cluster", "members").output
            return members.components(separatedBy: "voter").count - 1 == 3 && members.contains("yes")
                && ["alpha", "beta", "gamma"].allSatisfy { members.contains($0) }
        }
        // The join token: every server shows the same one (each holds the CA, shared by the
        // bootstrap server).
        for agent in agents {
            try agent.waitUntil("\(agent.nodeName) to hold the CA and the token", timeout: 30) {
                try agent.deployctl("cluster", "token").output.trimmingCharacters(in: .whitespacesAndNewlines) == token
            }
        }
        // Rotated on a server that did not bootstrap: every server takes the new one from the
        // log and saves it, and the old one no longer admits anyone.
        let rotated = try agents[1].deployctl("cluster", "token", "--rotate").output.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(rotated != token && rotated.hasPrefix("flt1."))
        try first.waitUntil("the first server to take the rotated token", timeout: 10) {
            try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == rotated
        }
        do {
            let late = try Self.server("delta", port: try Self.freePort(), joining: (ports[0], token))
            late.shutdown()
            Issue.record("the old token still admitted a server")
        } catch {
            #expect("\(error)".contains("not this cluster's current one"), "\(error)")
        }
        // A write through a follower is forwarded to the leader.
        let leaderID = try first.get("/v1/status", as: Status.self).leader
        let follower = try #require(agents.first { (try? $0.get("/v1/status", as: Status.self).leader) != nil && $0.nodeName != "alpha" })
        let applied = try follower.deployctl("apply", "-f", "manifests/worker.json", "--timeout", "60s")
        #expect(applied.status == 0, "\(applied.output)\(applied.error)\n\(follower.agentLog())")
        // A linearizable read on a follower (ReadIndex through the leader, over the network)
        // sees the write.
        let (code, body) = try UnixHTTP.request("GET", "/v1/status?consistent=true", socket: follower.socket)
        #expect(code == 200 && body.contains("\"worker\""), "\(code) \(body)")
        // kill -9 the leader; the other two elect one of themselves and take writes.
        let leaderIndex = try #require(Int(leaderID)).advanced(by: -1)
        let leader = agents[leaderIndex]
        leader.kill9()
        let rest = agents.enumerated().filter { $0.offset != leaderIndex }.map(\.element)
        try rest[0].waitUntil("a new leader", timeout: 30) {
            let status = try rest[0].get("/v1/status", as: Status.self)
            return status.leader != leaderID && status.leader != "0"
        }
        let scaled = try rest[1].deployctl("scale", "worker/ticker", "3")
        #expect(scaled.status == 0, "\(scaled.output)\(scaled.error)\n\(rest[1].agentLog())")
        // The killed server comes back on its state, follows the new leader and sees the change.
        try leader.start()
        try leader.waitUntil("the restarted server to see the scale", timeout: 30) {
            try leader.deployctl("status", "-o", "json").output.contains("\"replicas\" : 3")
                || leader.deployctl("status").output.contains("3/3")
        }
        #expect(try leader.get("/v1/status", as: Status.self).leader != leaderID)
        let deleted = try rest[0].deployctl("delete", "worker")
        #expect(deleted.status == 0, "\(deleted.output)\(deleted.error)")
    }

    @Test("a server joining through a follower is added to Raft through the leader")
    func aServerJoinsThroughAFollower() throws {
        var agents: [DevAgent] = []
        defer { for agent in agents { agent.shutdown() } }
        let (ports, token) = try Self.threeVoters(into: &agents)
        let leaderID = try agents[0].get("/v1/status", as: Status.self).leader
        let followerIndex = try #require(agents.indices.first { String($0 + 1) != leaderID })
        agents.append(try Self.server("delta", port: try Self.freePort(), joining: (ports[followerIndex], token)))
        try agents[0].waitUntil("delta to be a member of Raft", timeout: 30) {
            let members = try agents[0].deployctl("cluster", "members").output
            return members.split(separator: "\n").contains { $0.contains("delta") && ($0.contains("voter") || $0.contains("learner")) }
        }
    }

    @Test("a client cannot join under a server's name, whatever its case: it would be taken for that server")
    func aClientCannotTakeAServersName() throws {
        let port = try Self.freePort()
        let server = try Self.server("alpha", port: port)
        defer { server.shutdown() }
        let token = try Self.joinToken(of: server)
        do {
            let impostor = try Self.agent("ALPHA", port: try Self.freePort(), joining: (port, token), client: true)
            impostor.shutdown()
            Issue.record("a client joined under the server's name")
        } catch {
            #expect("\(error)".contains("is the name of a server of this cluster"), "\(error)")
        }
    }

    @Test("a join with a token that is not the cluster's fails, and agentd says why")
    func aWrongTokenIsRefused() throws {
        let port = try Self.freePort()
        let first = try Self.server("alpha", port: port)
        defer { first.shutdown() }
        let token = try String(contentsOfFile: first.stateDirectory + "/state/cluster/join-token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        // Same pin, another secret.
        var parts = token.split(separator: ".").map(String.init)
        parts[2] = String(repeating: "a", count: parts[2].count)
        do {
            let impostor = try Self.server("beta", port: try Self.freePort(), joining: (port, parts.joined(separator: ".")))
            impostor.shutdown()
            Issue.record("a join with a wrong token started an agent")
        } catch {
            #expect("\(error)".contains("refused the join: the join token is not this cluster's current one"), "\(error)")
        }
    }

    @Test("servers renew their short-lived certificates before they expire, and connect with the new ones after the old ones ended; the TCP API is served over TLS with the current one")
    func certificatesAreRenewed() throws {
        let ports = try (0..<2).map { _ in try Self.freePort() }
        let lifetime = ["--certificate-lifetime", "15s"]
        let apiPort = try Self.freePort()
        let tokenFile = "/tmp/flotilla-token-\(apiPort)"
        try "s3cret-\(apiPort)\n".write(toFile: tokenFile, atomically: true, encoding: .utf8)
        defer { unlink(tokenFile) }
        let first = try Self.server("alpha", port: ports[0], extra: lifetime + ["--api-tcp", "127.0.0.1:\(apiPort)", "--token-file", tokenFile])
        defer { first.shutdown() }
        let token = try String(contentsOfFile: first.stateDirectory + "/state/cluster/join-token", encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let second = try Self.server("beta", port: ports[1], joining: (ports[0], token), extra: lifetime)
        defer { second.shutdown() }
        let certificates = [first, second].map { $0.stateDirectory + "/state/cluster/node.pem" }
        let issued = try certificates.map { try String(contentsOfFile: $0, encoding: .utf8) }
        // Renewed at two thirds (10 s); wait past the first certificates' end (15 s).
        try first.waitUntil("both certificates renewed", timeout: 30) {
            try zip(certificates, issued).allSatisfy { path, old in try String(contentsOfFile: path, encoding: .utf8) != old }
        }
        Thread.sleep(forTimeInterval: 8)
        #expect(first.agentLog().contains("renewed the node certificate"))
        #expect(second.agentLog().contains("renewed the node certificate"))
        // The TCP API presents the node certificate as it is now: the first one has expired,
        // so a handshake with it would fail verification against the cluster CA.
        let https = ["--address", "https://127.0.0.1:\(apiPort)", "--token", "s3cret-\(apiPort)"]
        let caFile = second.stateDirectory + "/state/cluster/cluster-ca.pem"
        let verified = try first.runDeployctl(["nodes"] + https + ["--ca-file", caFile])
        #expect(verified.status == 0 && verified.output.contains("alpha"), "\(verified)")
        let untrusted = try first.runDeployctl(["nodes"] + https)
        #expect(untrusted.status == 3 && untrusted.error.contains("--ca-file"), "\(untrusted)")
        let plain = try first.runDeployctl(["nodes", "--address", "http://127.0.0.1:\(apiPort)", "--token", "s3cret-\(apiPort)"])
        #expect(plain.status == 3 && plain.error.contains("use https://"), "\(plain)")
        // New connections after the first certificates expired: the second server restarts,
        // reconnects with its renewed certificate, and its write is forwarded.
        second.kill9()
        try second.start()
        let applied = try second.deployctl("apply", "-f", "manifests/worker.json", "--timeout", "60s")
        #expect(applied.status == 0, "\(applied.output)\(applied.error)\n\(second.agentLog())")
        #expect(try second.deployctl("delete", "worker").status == 0)
    }

    @Test("a member removed from the cluster is refused the renewal of its certificate")
    func aRemovedMemberIsNotRenewed() throws {
        let lifetime = ["--certificate-lifetime", "15s"]
        let port = try Self.freePort()
        var agents: [DevAgent] = []
        defer { for agent in agents { agent.shutdown() } }
        agents.append(try Self.server("alpha", port: port, extra: lifetime))
        let token = try Self.joinToken(of: agents[0])
        agents.append(try Self.agent("c1", port: try Self.freePort(), joining: (port, token), client: true, extra: lifetime))
        let (server, client) = (agents[0], agents[1])
        try server.waitUntil("c1 registered", timeout: 30) { try server.deployctl("nodes").output.contains("c1") }
        // Member 2: the one after the bootstrap server.
        let removed = try server.deployctl("cluster", "remove-peer", "2")
        #expect(removed.status == 0, "\(removed)")
        // Renewal is due at two thirds of 15 s.
        try client.waitUntil("the renewal refused", timeout: 30) { client.agentLog().contains("is not a member of this cluster") }
        #expect(!client.agentLog().contains("renewed the node certificate"), "\(client.agentLog())")
    }

    @Test("after the server that bootstrapped the cluster is lost for good, the others still admit agents and renew their certificates")
    func theClusterOutlivesItsBootstrapServer() throws {
        var agents: [DevAgent] = []
        defer { for agent in agents { agent.shutdown() } }
        // Three voters: two learners left alone would have no quorum.
        let (ports, token) = try Self.threeVoters(extra: ["--certificate-lifetime", "15s"], into: &agents)
        for agent in agents[1...] {
            try agent.waitUntil("\(agent.nodeName) to receive the CA", timeout: 30) { agent.agentLog().contains("received the cluster CA") }
        }
        #expect(FileManager.default.fileExists(atPath: agents[2].stateDirectory + "/state/cluster/ca-key.pem"))
        agents[0].kill9()
        // A client joins through gamma, which did not bootstrap, with the cluster's token.
        let client = try Self.agent("c1", port: try Self.freePort(), joining: (ports[2], token), client: true)
        agents.append(client)
        try agents[1].waitUntil("the client registered", timeout: 60) { try agents[1].deployctl("nodes").output.contains("c1") }
        // Its certificate (15 s, renewed at 10 s) is renewed by a server left: alpha is gone.
        try client.waitUntil("the client's certificate renewed", timeout: 40) { client.agentLog().contains("renewed the node certificate") }
    }

    @Test("a join while the cluster has no leader is answered 'not now', and the joining agent asks again until a leader admits it")
    func aJoinWithoutALeaderWaitsForOne() throws {
        var agents: [DevAgent] = []
        defer { for agent in agents { agent.shutdown() } }
        let (ports, token) = try Self.threeVoters(into: &agents)
        // Beta (member 2, joined second) leads; then two of three servers are gone: alpha, a
        // follower alone, has no quorum and no leader. Beta comes back after alpha's first
        // attempt to record the client has given up (7 s).
        let moved = try agents[0].deployctl("cluster", "transfer-leadership", "2")
        #expect(moved.status == 0, "\(moved)")
        agents[1].kill9()
        agents[2].kill9()
        let beta = agents[1]
        DispatchQueue.global().asyncAfter(deadline: .now() + 9) { try? beta.startWithoutWaiting() }
        let client = try Self.agent("c1", port: try Self.freePort(), joining: (ports[0], token), client: true)
        agents.append(client)
        #expect(client.agentLog().contains("cannot admit now"), "\(client.agentLog())")
        try agents[0].waitUntil("the client registered", timeout: 30) { try agents[0].deployctl("nodes").output.contains("c1") }
    }

    @Test("transfer-leadership hands the lead to the named voter; remove-peer takes a dead server out; both from any server")
    func transferAndRemove() throws {
        var agents: [DevAgent] = []
        defer { for agent in agents { agent.shutdown() } }
        _ = try Self.threeVoters(into: &agents)
        // Asked twice first, so that node 1's answer is kept (StateAnswerCache) when the lead
        // moves: a change of leader or term alone changes no state, and must show all the same.
        for _ in 0..<2 { #expect(try agents[0].get("/v1/status", as: Status.self).leader == "1") }
        // Asked on node 3 (a follower), to move the lead to node 2.
        let moved = try agents[2].deployctl("cluster", "transfer-leadership", "2")
        #expect(moved.status == 0, "\(moved.output)\(moved.error)")
        #expect(try agents[0].get("/v1/status", as: Status.self).leader == "2")
        // The leader cannot remove itself.
        let refused = try agents[0].deployctl("cluster", "remove-peer", "2")
        #expect(refused.status != 0 && refused.error.contains("transfer leadership first"), "\(refused)")
        // Node 3 dies for good; removed through node 1 (a follower), it is gone from the list and
        // from Raft, and the two left still commit.
        agents[2].kill9()
        // Removing a live voter (node 1) while node 3 is down would leave a group that cannot
        // commit: refused, naming node 3.
        let unsafe = try agents[0].deployctl("cluster", "remove-peer", "1")
        #expect(unsafe.status != 0 && unsafe.error.contains("no majority") && unsafe.error.contains("node 3 returns"), "\(unsafe)")
        let removed = try agents[0].deployctl("cluster", "remove-peer", "3")
        #expect(removed.status == 0, "\(removed.output)\(removed.error)")
        let members = try agents[1].deployctl("cluster", "members").output
        #expect(!members.contains("gamma") && members.components(separatedBy: "voter").count - 1 == 2, "\(members)")
        let applied = try agents[0].deployctl("apply", "-f", "manifests/worker.json", "--no-wait")
        #expect(applied.status == 0, "\(applied.output)\(applied.error)")
        #expect(try agents[1].deployctl("delete", "worker").status == 0)
    }
}
