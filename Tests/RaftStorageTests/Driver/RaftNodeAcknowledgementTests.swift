import Foundation
import Testing
@testable import Raft

/// A follower's acknowledgement leaves from the WAL's writer thread once its entries are
/// durable, not after a hop back onto the follower's actor.
@Suite("Raft node: acknowledgements", .serialized, .timeLimit(.minutes(2)))
struct RaftNodeAcknowledgementTests {
    @Test func aFollowersAcknowledgementDoesNotWaitForItsBusyActor() async throws {
        // Election timeouts of 1 s: the leader hears nothing from the follower while its sync
        // is held, and check-quorum must not unseat it meanwhile.
        let cluster = try TestCluster(electionTimeoutTicks: 100)
        let stalling = StopFlag(), release = DispatchSemaphore(value: 0), entered = StopFlag()
        try await cluster.start(1)
        try await cluster.start(2)
        let follower = try await cluster.startStallingWAL(3, while: stalling, release: release, entered: entered)
        var leaderID = try await cluster.waitForLeader()
        if leaderID == 3 {
            try await follower.transferLeadership(to: 1)
            try await eventually("node 1 leads") { await follower.leader == 1 }
            leaderID = try await cluster.waitForLeader()
        }
        let leader = try cluster.node(leaderID)
        _ = try await leader.propose(Array("first".utf8))
        try await cluster.waitForItems(["first"])
        // Node 3's acknowledgement is now the only one that can commit.
        await cluster.stop(cluster.ids.first { $0 != leaderID && $0 != 3 }!)

        stalling.set()
        let clock = ContinuousClock()
        let index = await leader.status.lastIndex + 1
        let proposal = Task {
            _ = try await leader.propose(Array("second".utf8))
            return clock.now
        }
        // Its sync held, and the entry handed to its WAL (perhaps behind a batch whose sync is
        // the one held): nothing left for its actor to do before the acknowledgement.
        let storage = await follower.storage
        try await eventually("node 3 syncs the entry") { entered.isSet && storage.lastIndex >= index }
        // Its actor is held for 3 s from here; the sync goes through in the meantime.
        let busy = Task {
            await follower.withStateMachine { _ in Thread.sleep(forTimeInterval: 3) }
            return clock.now
        }
        try await Task.sleep(for: .milliseconds(200))
        stalling.clear()
        release.signal()
        let committed = try await proposal.value
        let freed = await busy.value
        #expect(committed < freed, "the proposal committed \(freed - committed) after the follower's actor was free again")
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
        let cluster = try TestCluster(electionTimeoutTicks: 100)
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
            defer { secondAnswered.set() }
            return try await leader.propose(Array("second".utf8))
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
