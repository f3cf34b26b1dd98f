import Raft
import Synchronization
import Testing

@testable import Agent

/// Who may speak Raft to a server: its Raft members as the node last knew them. A client's
/// certificate is the cluster's too, and the id in its hello is its own word: Raft from an id
/// that is no member (a client's, a made-up one, a removed server's) is dropped.
@Suite struct RaftSenderFilterTests {
    final class Collector: RaftMessageReceiver {
        let received = Mutex<[Message]>([])
        func receive(_ messages: [Message]) { received.withLock { $0 += messages } }
    }

    static func heartbeat(from sender: NodeID) -> Message {
        Message(from: sender, to: 1, term: 9, payload: .timeoutNow)
    }

    @Test func onlyMembersSpeakRaftOnceTheNodeHoldsAConfiguration() {
        let collector = Collector()
        let target = Deferred<any RaftMessageReceiver>()
        target.set(collector)
        let members = Deferred<@Sendable () -> Set<NodeID>>()
        let receiver = ForwardingReceiver(target: target, raftMembers: members)
        // No configuration yet (a server that has just joined): everything, so the leader's
        // first messages bring one.
        receiver.receive([Self.heartbeat(from: 7)])
        members.set { [1, 2, 3] }
        receiver.receive([Self.heartbeat(from: 2), Self.heartbeat(from: 7), Self.heartbeat(from: 999)])
        #expect(collector.received.withLock { $0.map(\.from) } == [7, 2])
    }

    /// The members a real node publishes for the transport's side: its voters once it runs.
    @Test(.timeLimit(.minutes(1))) func aNodePublishesItsMembers() async throws {
        let group = try await OneNodeGateway(name: "members")
        #expect(group.node.lastKnownMembers == [1])
        await group.stop()
    }
}
