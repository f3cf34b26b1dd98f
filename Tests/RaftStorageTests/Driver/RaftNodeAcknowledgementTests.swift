import Foundation
import Synchronization
import Testing
@testable import Raft

/// A follower's acknowledgement leaves from the WAL's writer thread once its entries are
/// durable, not after a hop back onto the follower's actor.
@Suite("Raft node: acknowledgements", .serialized, .timeLimit(.minutes(2)))
struct RaftNodeAcknowledgementTests {
    /// Acknowledgements of entries new to a follower are sent from its WAL's writer thread
    /// (outside any task), not from its actor once a pool thread has resumed it. Not every one:
    /// a batch already durable when the node asks (its thread preempted between submitting and
    /// asking) is acknowledged at once, from the actor.
    @Test func acknowledgementsOfNewEntriesLeaveFromTheWALThread() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let leader = try cluster.node(try await cluster.waitForLeader())
        // Each accepting acknowledgement, and whether it was sent from inside a task.
        let acknowledgements = Mutex<[(from: NodeID, index: UInt64, inTask: Bool)]>([])
        cluster.network.setDropRule { message in
            if case .appendResponse(let response) = message.payload, !response.rejected {
                let inTask = withUnsafeCurrentTask { $0 != nil }
                acknowledgements.withLock { $0.append((message.from, response.index, inTask)) }
            }
            return false
        }
        for number in 1...20 { _ = try await leader.propose(Array("item-\(number)".utf8)) }
        cluster.network.setDropRule(nil)
        var highest: [NodeID: UInt64] = [:]
        var newOnes = 0, fromTasks = 0
        for acknowledgement in acknowledgements.withLock({ $0 }) where acknowledgement.index > highest[acknowledgement.from, default: 0] {
            highest[acknowledgement.from] = acknowledgement.index
            newOnes += 1
            if acknowledgement.inTask { fromTasks += 1 }
        }
        #expect(newOnes >= 20, "only \(newOnes) acknowledgements of new entries")
        #expect(fromTasks * 2 < newOnes, "\(fromTasks) of \(newOnes) acknowledgements of new entries were sent from a task")
        await cluster.stopAll()
    }
}

extension RaftNodeAcknowledgementTests {
    /// The syncs of one node, each held while its flag is set.
    struct HeldDisk {
        let stalling = StopFlag(), release = DispatchSemaphore(value: 0), entered = StopFlag()
    }

    /// An entry the leader has made durable commits while its own next sync is held: its
    /// proposer is answered then, not once that sync and another Ready have gone by.
    @Test func anEntryCommittedDuringTheLeadersNextSyncIsAnsweredAtOnce() async throws {
        // Election timeouts of 3 s: the leader sends nothing while its sync is held.
        let cluster = try TestCluster(electionTimeoutTicks: 300)
        var disks: [NodeID: HeldDisk] = [:]
        for id in cluster.ids {
            let disk = HeldDisk()
            disks[id] = disk
            try await cluster.startStallingWAL(id, while: disk.stalling, release: disk.release, entered: disk.entered)
        }
        let leaderID = try await cluster.waitForLeader()
        let leader = try cluster.node(leaderID)
        let followers = cluster.ids.filter { $0 != leaderID }.compactMap { disks[$0] }
        _ = try await leader.propose(Array("first".utf8))

        // The followers hold their acknowledgement of "second" in their syncs...
        for disk in followers { disk.stalling.set() }
        let before = await leader.status.lastIndex
        let secondAnswered = StopFlag()
        let second = Task {
            let index = try await leader.propose(Array("second".utf8))
            secondAnswered.set()
            return index
        }
        try await eventually("the leader makes \"second\" durable") {
            await leader.status.progress[leaderID].map { $0.match > before } ?? false
        }
        // ...until the leader's sync of "third" has begun, and is held.
        disks[leaderID]?.stalling.set()
        let third = Task { try await leader.propose(Array("third".utf8)) }
        try await eventually("the leader syncs \"third\"") { disks[leaderID]?.entered.isSet ?? false }
        for disk in followers {
            disk.stalling.clear()
            disk.release.signal()
        }
        let answeredWhileHeld = (try? await eventually("\"second\" is answered", timeout: .seconds(3)) { secondAnswered.isSet }) != nil
        disks[leaderID]?.stalling.clear()
        disks[leaderID]?.release.signal()
        #expect(answeredWhileHeld, "\"second\" was not answered while the leader's next sync was held")
        _ = try await second.value
        _ = try await third.value
        await cluster.stopAll()
    }
}
