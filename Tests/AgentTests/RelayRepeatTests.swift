import Cluster
import Controller
import Foundation
import Logging
import Raft
import Synchronization
import Testing
import TestSupport

@testable import Agent

/// A client agent relays an API request to a server; when that server gives no answer in time,
/// it may still have acted. A write then goes to no other server (it would run twice: a
/// `PUT ?cas` refused as a conflict with its own first run, an apply recorded twice); a read
/// does.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct RelayRepeatTests {
    /// Answers every call with a relayed 200, at once or (`holding`) once released; counts the calls.
    final class Server: CallHandler {
        let holding: Bool
        let calls = Atomic<Int>(0)
        let released = Atomic<Bool>(false)

        init(holding: Bool) { self.holding = holding }

        func answer(_ payload: [UInt8], from caller: NodeID) async throws -> [UInt8] {
            calls.add(1, ordering: .relaxed)
            while holding && !released.load(ordering: .relaxed) { try await Task.sleep(for: .milliseconds(10)) }
            return Array(try JSONEncoder().encode(ForwardedHTTPResponse(status: 200, headers: [], body: Data())))
        }
    }

    struct Silent: RaftMessageReceiver {
        func receive(_ messages: [Message]) {}
    }

    @Test func aRelayedWriteIsNotSentToASecondServerAfterOneThatMayHaveActed() async throws {
        let ca = try ClusterCA.create(clusterID: "relay", now: Date())
        func configuration(_ id: NodeID) throws -> TransportConfiguration {
            TransportConfiguration(
                localID: id, localName: "node-\(id)", listenHost: "127.0.0.1", listenPort: 0,
                tls: try ca.issueNodeCredentials(nodeName: "node-\(id)", now: Date()).tlsMaterial(), verifier: ca.peerVerifier)
        }
        // Server 1, asked first, acts but answers only after the relay's timeout; server 2 at
        // once. The timeout is long enough for a loaded machine to deliver the call.
        let slow = Server(holding: true)
        let quick = Server(holding: false)
        let timeout = Duration.seconds(3)
        let one = try ClusterTransport(configuration: configuration(1), receiver: Silent(), callHandler: slow)
        let two = try ClusterTransport(configuration: configuration(2), receiver: Silent(), callHandler: quick)
        var clientConfiguration = try configuration(10)
        clientConfiguration.dialsEveryPeer = true
        let client = try ClusterTransport(configuration: clientConfiguration, receiver: Silent())
        let servers = [
            MemberRecord(id: 1, name: "node-1", address: "127.0.0.1:\(try await one.start())", addedIndex: 1),
            MemberRecord(id: 2, name: "node-2", address: "127.0.0.1:\(try await two.start())", addedIndex: 2),
        ]
        _ = try await client.start()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("relay-" + UUID().uuidString).path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let follower = try ServerFollower(
            nodeName: "node-10", transport: client, store: try AssignmentStore(stateDirectory: directory), joinedServers: servers,
            logger: Logger(label: "relay-test"))
        #expect(await pollCondition(timeout: .seconds(10), every: .milliseconds(20)) { client.isConnected(to: 1) && client.isConnected(to: 2) })

        let write = ForwardedHTTPRequest(method: "PUT", target: "/v1/kv/flag?cas=3", headers: [], body: Data("on".utf8))
        await #expect(throws: CallError.timedOut(1, timeout)) {
            _ = try await follower.relay(write, timeout: timeout)
        }
        #expect(slow.calls.load(ordering: .relaxed) == 1)
        #expect(quick.calls.load(ordering: .relaxed) == 0, "the write went to a second server")

        let read = ForwardedHTTPRequest(method: "GET", target: "/v1/kv/flag", headers: [], body: Data())
        let answer = try await follower.relay(read, timeout: timeout)
        #expect(answer.status == 200)
        #expect(quick.calls.load(ordering: .relaxed) == 1)

        slow.released.store(true, ordering: .relaxed)

        await client.shutdown()
        await one.shutdown()
        await two.shutdown()
    }
}
