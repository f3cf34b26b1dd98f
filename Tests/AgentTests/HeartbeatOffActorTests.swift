import Controller
import Foundation
import Raft
import Synchronization
import Testing

@testable import Agent

/// The leader answers a heartbeat without waiting for its Raft node's actor: while the actor
/// applies a plan of tens of thousands of placements (a second or more), heartbeats that
/// went through it waited as long, and under a large rollout nodes came close to their
/// down timeout.
@Suite struct HeartbeatOffActorTests {
    @Test("a heartbeat is answered while the Raft node's actor is held, and still tells a known node from an unknown one", .timeLimit(.minutes(2)))
    func aHeartbeatDoesNotWaitForTheActor() async throws {
        let group = try await OneNodeGateway(name: "heartbeat")
        let (node, gateway) = (group.node, group.gateway)
        let registration = OneNodeGateway.registration("n1")
        _ = try await gateway.submit(.registerNode(registration))
        #expect(try await gateway.heartbeat(node: "n1"))
        #expect(try await !gateway.heartbeat(node: "n2"))

        // Hold the actor as a long apply would, until the heartbeat is answered (or 60 s pass,
        // when it waits on the actor). A fixed hold failed under CI: with one of two pool
        // threads blocked and the other busy with a CPU-bound test, the heartbeat could not run
        // at all within it, actor or none.
        let started = Mutex(false)
        let answered = Mutex(false)
        let released = Mutex(false)
        let hold = Task {
            await node.withStateMachine { _ in
                started.withLock { $0 = true }
                let limit = Date().addingTimeInterval(60)
                while !answered.withLock({ $0 }), Date() < limit { Thread.sleep(forTimeInterval: 0.005) }
                released.withLock { $0 = true }
            }
        }
        while !started.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
        let known = try await gateway.heartbeat(node: "n1")
        let answeredWhileHeld = !released.withLock { $0 }
        answered.withLock { $0 = true }
        #expect(known)
        #expect(answeredWhileHeld, "the heartbeat was answered only after the actor was released")
        await hold.value
        await group.stop()
    }
}
