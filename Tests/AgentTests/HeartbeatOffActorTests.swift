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
        let directory = NSTemporaryDirectory() + "flotilla-heartbeat-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let storage = try DurableLogStorage.open(directory: directory, bootstrap: ConfState(voters: [1]))
        let feed = ChangeFeed()
        let members = MembershipDirectory()
        let network = InProcessNetwork()
        let node = try RaftNode(
            options: .init(raft: RaftConfig(id: 1, electionTimeoutTicks: 10, heartbeatIntervalTicks: 1), tickInterval: .milliseconds(10)),
            storage: storage, machine: ControllerMachine(feed: feed, directory: members), transport: network)
        network.register(1, node)
        await node.start()
        // Elected at once, as a dev agent is: a loaded machine may be slow to time out.
        await node.campaign()
        let elected = ContinuousClock.now + .seconds(30)
        while node.lastKnownLeader != 1, ContinuousClock.now < elected { try await Task.sleep(for: .milliseconds(10)) }
        let gateway = ClusterGateway(node: node, feed: feed, directory: members)
        let registration = NodeRegistration(
            name: "n1", address: "n1:7070", labels: [:],
            attributes: NodeAttributes(os: "linux", arch: "x86_64", kernel: "6.1", cpus: 2, memoryBytes: 1 << 30),
            capacity: NodeCapacity(cpuMillicores: 2000, memoryBytes: 1 << 30), dynamicPorts: .defaultDynamic)
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
        await node.stop()
    }
}
