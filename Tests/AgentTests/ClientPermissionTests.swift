import Cluster
import Controller
import Foundation
import Raft
import Testing
import TestSupport

/// What a client's certificate allows: a client is an agent of the cluster (its certificate is
/// the cluster CA's), but it speaks for its own node only and asks the leader for nothing.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct ClientPermissionTests {
    struct Receiver: RaftMessageReceiver {
        func receive(_ messages: [Message]) {}
    }

    @Test("a client may not have the leader propose an entry, nor register or report for another node, nor relay API requests once removed")
    func aClientSpeaksForItsOwnNodeOnly() async throws {
        let port = try ClusterFormationTests.freePort()
        let server = try ClusterFormationTests.agent("alpha", port: port)
        defer { server.shutdown() }
        let token = try JoinToken(parsing: ClusterFormationTests.joinToken(of: server))
        let directory = server.stateDirectory + "/rogue"
        let (identity, servers) = try await ClusterIdentity.join(
            directory: directory, host: "127.0.0.1", port: port, token: token, nodeName: "rogue", role: .client, advertiseAddress: "127.0.0.1:1")
        var configuration = TransportConfiguration(
            localID: identity.nodeID, localName: "rogue", listenPort: 0, tls: try identity.credentials.tlsMaterial(),
            verifier: identity.credentials.peerVerifier)
        configuration.dialsEveryPeer = true
        let transport = try ClusterTransport(configuration: configuration, receiver: Receiver())
        defer { Task { await transport.shutdown() } }
        transport.setPeers(servers)
        let leader = try #require(servers.first).id
        for _ in 0..<100 where !transport.isConnected(to: leader) { try await Task.sleep(for: .milliseconds(50)) }

        // Kind 1: "propose this entry as it is", a server's request to the leader.
        let member = ControllerEntry(command: .addMember(id: 99, name: "intruder", address: "127.0.0.1:9"), time: Timestamp(unixMilliseconds: 0))
        await #expect(throws: CallError.self) { try await transport.call(leader, payload: [1] + member.encoded()) }
        // Kind 16: a submit, but for another node (and of a command no client may send).
        let foreign = ControllerEntry(command: .nodeHeartbeat(node: "alpha"), time: Timestamp(unixMilliseconds: 0))
        await #expect(throws: CallError.self) { try await transport.call(leader, payload: [16] + foreign.encoded()) }
        // Kind 17: a heartbeat for another node.
        await #expect(throws: CallError.self) { try await transport.call(leader, payload: [17] + Array("alpha".utf8)) }
        // Its own heartbeat is answered (0: the node is not registered yet).
        #expect(try await transport.call(leader, payload: [17] + Array("rogue".utf8)) == [0])
        let members = try server.deployctl("cluster", "members").output
        #expect(!members.contains("intruder"), "\(members)")

        // Kind 19, an API request relayed: answered while it is a member, refused once removed
        // (its certificate still verifies: it lasts up to a day).
        let version = [19] + Array(#"{"method":"GET","target":"/v1/version","headers":[],"body":""}"#.utf8)
        #expect(try await transport.call(leader, payload: version).count > 2)
        let removed = try server.deployctl("cluster", "remove-peer", String(identity.nodeID))
        #expect(removed.status == 0, "\(removed)")
        var refusal: CallError?
        for _ in 0..<100 {
            do throws(CallError) {
                _ = try await transport.call(leader, payload: version)
                try? await Task.sleep(for: .milliseconds(50))
            } catch {
                refusal = error
                break
            }
        }
        // Refused by the membership check of calls, or (since the servers close a removed
        // member's connections and refuse its new ones) with no connection at all.
        let refusedForRemoval: (CallError?) -> Bool = { error in
            switch error {
            case .failed(_, let reason)?: reason.contains("removed?")
            case .noConnection?, .connectionLost?: true
            default: false
            }
        }
        #expect(refusedForRemoval(refusal), "\(String(describing: refusal))")
        // And it stays refused.
        for _ in 0..<10 {
            do throws(CallError) {
                _ = try await transport.call(leader, payload: version)
                Issue.record("a removed client's relayed request was answered")
            } catch {
                #expect(refusedForRemoval(error), "\(error)")
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }
}
