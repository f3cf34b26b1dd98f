import Cluster
import Controller
import Foundation
import Raft
import Testing
import TestSupport

/// A server's request to a member that does not lead is answered "not the leader" in the
/// answer itself, naming the leader: the asker can tell it from a failure and may safely send
/// the request again to the leader (a write through a follower that still believes in an old
/// leader is retried, not failed).
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct LeaderAnswerTests {
    struct Receiver: RaftMessageReceiver {
        func receive(_ messages: [Message]) {}
    }

    @Test("a follower answers a propose with 'not the leader' and the leader's id; the leader answers the index")
    func aFollowerNamesTheLeader() async throws {
        let port = try ClusterFormationTests.freePort()
        let alpha = try ClusterFormationTests.agent("alpha", port: port)
        defer { alpha.shutdown() }
        let token = try ClusterFormationTests.joinToken(of: alpha)
        let beta = try ClusterFormationTests.server("beta", port: try ClusterFormationTests.freePort(), joining: (port, token))
        defer { beta.shutdown() }
        try beta.waitUntil("beta to list both servers", timeout: 30) {
            let members = try beta.deployctl("cluster", "members").output
            return members.contains("alpha") && members.contains("beta")
        }
        // A third server's identity, held by the test: it asks as a server would.
        let (identity, servers) = try await ClusterIdentity.join(
            directory: alpha.stateDirectory + "/asker", host: "127.0.0.1", port: port, token: JoinToken(parsing: token),
            nodeName: "asker", role: .server, advertiseAddress: "127.0.0.1:1")
        var configuration = TransportConfiguration(
            localID: identity.nodeID, localName: "asker", listenPort: 0, tls: try identity.credentials.tlsMaterial(),
            verifier: identity.credentials.peerVerifier)
        configuration.dialsEveryPeer = true
        let transport = try ClusterTransport(configuration: configuration, receiver: Receiver())
        defer { Task { await transport.shutdown() } }
        transport.setPeers(servers)
        let leader = try #require(servers.first { $0.name == "alpha" }).id
        let follower = try #require(servers.first { $0.name == "beta" }).id
        for _ in 0..<100 where !(transport.isConnected(to: leader) && transport.isConnected(to: follower)) {
            try await Task.sleep(for: .milliseconds(50))
        }
        let entry = [1] + ControllerEntry(command: .nodeHeartbeat(node: "alpha"), time: Timestamp(unixMilliseconds: 0)).encoded()
        // Beta learns of the asker's membership by applying it; until then it refuses a stranger.
        var answer: [UInt8] = []
        for _ in 0..<100 {
            if let reply = try? await transport.call(follower, payload: entry) {
                answer = reply
                break
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(answer == [1] + withUnsafeBytes(of: leader.littleEndian) { Array($0) }, "\(answer)")
        let done = try await transport.call(leader, payload: entry)
        #expect(done.first == 0 && done.count == 9, "\(done)")
    }
}
