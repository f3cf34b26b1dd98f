import Foundation
import Synchronization
import Testing
@testable import Raft

/// The driver with real storage in temporary directories and an in-process network.
@Suite("Raft node", .serialized, .timeLimit(.minutes(2)))
struct RaftNodeTests {
    @Test func proposalsCommitAndApplyOnEveryNode() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let leaderID = try await cluster.waitForLeader()
        let leader = try cluster.node(leaderID)
        var expected: [String] = []
        var lastIndex: UInt64 = 0
        for number in 1...20 {
            let item = "item-\(number)"
            let index = try await leader.propose(Array(item.utf8))
            #expect(index > lastIndex)
            lastIndex = index
            expected.append(item)
            // propose returns once applied here: the leader's state already holds it.
            #expect(await leader.withStateMachine { $0.items.last } == item)
        }
        try await cluster.waitForItems(expected)
        // Every node persisted the log in its own directory.
        for id in cluster.ids {
            let segments = try FileBytes.names(in: cluster.directory(of: id) + "/wal").filter { $0.hasSuffix(".wal") }
            #expect(!segments.isEmpty)
        }
        await cluster.stopAll()
    }

    /// Each sequential proposal needs at most one sync of its entry on the leader; the commit
    /// index that moves after it (a Ready of its own, which needs no sync) rides with the next
    /// entry. (Fewer is fine: the leader does not wait for its own sync, so an entry may be
    /// answered through its followers and the next one join the sync still in flight.)
    @Test func aCommitIndexThatAloneMovedCostsNoSyncOfItsOwn() async throws {
        // A limit no pause of the test reaches: a stalled pool must not write deferred batches.
        let cluster = try TestCluster(walDeferLimit: .seconds(3600))
        try await cluster.startAll()
        let leader = try cluster.node(try await cluster.waitForLeader())
        let log = await leader.storage.log
        let before = log.statistics.syncs
        for number in 1...20 { _ = try await leader.propose(Array("item-\(number)".utf8)) }
        let syncs = log.statistics.syncs - before
        #expect(syncs >= 1 && syncs <= 22, "\(syncs) syncs on the leader for 20 sequential proposals")
        await cluster.stopAll()
    }

    @Test func followerProposalFailsFastWithTheLeaderHint() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let leaderID = try await cluster.waitForLeader()
        let followerID = try #require(cluster.ids.first { $0 != leaderID })
        let follower = try cluster.node(followerID)
        let clock = ContinuousClock()
        let started = clock.now
        await #expect(throws: RaftNodeError.notLeader(leaderHint: leaderID)) {
            _ = try await follower.propose(Array("nope".utf8))
        }
        // Refused at once rather than waiting out the proposal's deadline (30 s by default). The
        // bound leaves room for a loaded machine: a clean-clone CI run took 154 ms against 100 ms.
        #expect(clock.now - started < .seconds(2))
        await cluster.stopAll()
    }

    @Test func killingTheLeaderLosesNoAcknowledgedProposal() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let firstLeader = try await cluster.waitForLeader()
        let nodes = cluster.nodes
        let acknowledged = Acknowledged()
        let stop = StopFlag()
        // Eight clients, each proposing to whichever node it believes leads, following hints.
        let clients = Task {
            await withTaskGroup(of: Void.self) { group in
                for client in 0..<8 {
                    group.addTask {
                        var target = firstLeader
                        var number = 0
                        while !stop.isSet {
                            let item = "c\(client)-\(number)"
                            do {
                                guard let node = nodes[target] else { throw RaftNodeError.stopped }
                                _ = try await node.propose(Array(item.utf8))
                                acknowledged.add(item)
                                number += 1
                            } catch RaftNodeError.notLeader(let hint) where hint != 0 && nodes[hint] != nil {
                                target = hint
                            } catch {
                                // Stopped, dropped or no leader yet: try the next node shortly.
                                target = target % 3 + 1
                                try? await Task.sleep(for: .milliseconds(5))
                            }
                        }
                    }
                }
            }
        }
        try await eventually("some proposals acknowledged") { acknowledged.count >= 50 }
        try await cluster.kill(firstLeader)
        let secondLeader = try await cluster.waitForLeader()
        #expect(secondLeader != firstLeader)
        let countAtElection = acknowledged.count
        try await eventually("proposals acknowledged by the new leader") { acknowledged.count >= countAtElection + 50 }
        stop.set()
        await clients.value

        let survivors = cluster.ids.filter { $0 != firstLeader }
        let all = acknowledged.items
        try await eventually("both survivors to apply every acknowledged proposal") {
            for id in survivors {
                let items = Set(try await cluster.node(id).withStateMachine { $0.items })
                if !all.isSubset(of: items) { return false }
            }
            return true
        }
        let lists = try await survivors.asyncMap { try await cluster.node($0).withStateMachine { $0.items } }
        let shorter = min(lists[0].count, lists[1].count)
        // State machine safety: the survivors applied the same sequence.
        #expect(Array(lists[0].prefix(shorter)) == Array(lists[1].prefix(shorter)))
        await cluster.stopAll()
    }

    @Test func restartedNodeRecoversFromDiskAndCatchesUp() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let leaderID = try await cluster.waitForLeader()
        let leader = try cluster.node(leaderID)
        var expected: [String] = []
        for number in 1...10 {
            expected.append("before-\(number)")
            _ = try await leader.propose(Array(expected[expected.count - 1].utf8))
        }
        try await cluster.waitForItems(expected)
        let victim = try #require(cluster.ids.first { $0 != leaderID })
        try await cluster.kill(victim)
        for number in 1...30 {
            expected.append("while-down-\(number)")
            _ = try await leader.propose(Array(expected[expected.count - 1].utf8))
        }
        // The restarted node finds its first ten entries on its own disk: it applied them, and
        // entries are synced before they are applied. (Not its commit index: a Ready that only
        // moves the commit index is applied before it is synced, as in etcd, and the power cut
        // may take it.)
        let storage = try DurableLogStorage.open(directory: cluster.directory(of: victim), walOptions: .init(segmentBytes: 256 * 1024))
        #expect(storage.lastIndex >= 11)
        storage.close()
        try await cluster.start(victim)
        try await cluster.waitForItems(expected)
        await cluster.stopAll()
    }

    /// Starts `cluster`, takes a follower down (killed, or stopped), proposes `entries`
    /// through the leader and waits until the leader's log starts past `compactedPast`: the
    /// follower then needs the leader's snapshot. Returns the follower and the entries.
    func leaderCompactsPastADownFollower(
        _ cluster: TestCluster, entries: [String], compactedPast: UInt64, kill: Bool = false
    ) async throws -> (victim: NodeID, expected: [String]) {
        try await cluster.startAll()
        let leaderID = try await cluster.waitForLeader()
        let leader = try cluster.node(leaderID)
        let victim = try #require(cluster.ids.first { $0 != leaderID })
        if kill { try await cluster.kill(victim) } else { await cluster.stop(victim) }
        for entry in entries { _ = try await leader.propose(Array(entry.utf8)) }
        try await eventually("the leader to compact its log") { await leader.status.firstIndex > compactedPast }
        return (victim, entries)
    }

    @Test func laggingNodeCatchesUpThroughASnapshot() async throws {
        let cluster = try TestCluster(snapshotEveryAppliedEntries: 20)
        let (victim, expected) = try await leaderCompactsPastADownFollower(
            cluster, entries: (1...70).map { "entry-\($0)" }, compactedPast: 20, kill: true)
        try await cluster.start(victim)
        try await cluster.waitForItems(expected)
        await cluster.stopAll()
        // The caught-up node installed and kept the leader's snapshot.
        let storage = try DurableLogStorage.open(directory: cluster.directory(of: victim), walOptions: .init(segmentBytes: 256 * 1024))
        #expect(storage.snapshotMetadata.index >= 20)
        storage.close()
    }

    /// Few but large entries: the log is compacted by bytes as well as by count, so a follower
    /// that missed more than that gets a snapshot, not every entry again.
    @Test func aFollowerBehindByMoreBytesThanTheLogKeepsGetsASnapshot() async throws {
        let cluster = try TestCluster(snapshotEveryAppliedEntries: 10_000, snapshotEveryAppliedBytes: 16 << 10)
        // 40 entries of 1 KiB: 2.5 times the byte bound, far below the count bound.
        let (victim, expected) = try await leaderCompactsPastADownFollower(
            cluster, entries: (1...40).map { "entry-\($0)-" + String(repeating: "x", count: 1024) }, compactedPast: 16)
        try await cluster.start(victim)
        try await cluster.waitForItems(expected)
        await cluster.stopAll()
        let storage = try DurableLogStorage.open(directory: cluster.directory(of: victim), walOptions: .init(segmentBytes: 256 * 1024))
        #expect(storage.snapshotMetadata.index >= 16, "the follower caught up without the leader's snapshot")
        storage.close()
    }

    /// A follower installing a leader's snapshot writes and fsyncs its file off the node's
    /// actor: with that fsync stalled, the node still answers.
    @Test func aStalledSnapshotFsyncDoesNotHoldTheNode() async throws {
        let cluster = try TestCluster(snapshotEveryAppliedEntries: 20)
        let (victim, expected) = try await leaderCompactsPastADownFollower(
            cluster, entries: (1...50).map { "entry-\($0)" }, compactedPast: 20)

        // The victim's first snapshot fsync stalls until released (10 s at most).
        let stalled = StopFlag(), release = DispatchSemaphore(value: 0), stalls = Mutex(0)
        let disk = UnsyncedChanges()
        disk.beforeSync(ofPathsContaining: "/snap/") { _ in
            guard stalls.withLock({ count in defer { count += 1 }; return count == 0 }) else { return }
            stalled.set()
            _ = release.wait(timeout: .now() + 10)
        }
        let node = try await cluster.start(victim, disk: disk)
        try await eventually("the snapshot's fsync to stall") { stalled.isSet }
        let answered = StopFlag()
        Task {
            _ = await node.status
            answered.set()
        }
        let answeredWhileStalled = (try? await eventually("the stalled node to answer", timeout: .seconds(2)) { answered.isSet }) != nil
        release.signal()
        #expect(answeredWhileStalled, "the node did not answer while its snapshot's fsync stalled: the fsync runs on its actor")
        try await cluster.waitForItems(expected)
        await cluster.stopAll()
    }

    /// An entry committed and durable here is answered while the entries proposed after it are
    /// on their way to the disk: its proposer does not wait for their sync as well.
    @Test func anEntryIsAnsweredWithoutWaitingForTheSyncOfLaterEntries() async throws {
        let cluster = try TestCluster(size: 1)
        let stalling = Mutex(false), stalls = Mutex(0), permits = DispatchSemaphore(value: 0)
        let disk = UnsyncedChanges()
        disk.beforeSync(ofPathsContaining: "/wal/") { _ in
            guard stalling.withLock({ $0 }) else { return }
            stalls.withLock { $0 += 1 }
            _ = permits.wait(timeout: .now() + 10)
        }
        let node = try await cluster.start(1, disk: disk)
        _ = try await cluster.waitForLeader()
        _ = try await node.propose(Array("before".utf8))
        let lastBefore = await node.status.lastIndex

        stalling.withLock { $0 = true }
        let first = Task { try await node.propose(Array("first".utf8)) }
        try await eventually("the first entry's sync to stall") { stalls.withLock { $0 } == 1 }
        let second = Task { try await node.propose(Array("second".utf8)) }
        try await eventually("the second entry to be appended") { await node.status.lastIndex == lastBefore + 2 }
        // The first entry's sync ends (it commits: a group of one); the second's stalls.
        permits.signal()
        try await eventually("the second entry's sync to stall") { stalls.withLock { $0 } == 2 }
        let firstAnswered = StopFlag()
        Task {
            _ = try? await first.value
            firstAnswered.set()
        }
        let answeredDuringTheStall = (try? await eventually("the first proposal's answer", timeout: .seconds(3)) { firstAnswered.isSet }) != nil
        stalling.withLock { $0 = false }
        permits.signal()
        #expect(answeredDuringTheStall, "the first entry was committed and durable, yet its proposer waited for the second entry's sync")
        _ = try await first.value
        _ = try await second.value
        try await cluster.waitForItems(["before", "first", "second"])
        await cluster.stopAll()
    }

    /// A leader does not wait for its own WAL sync: while that stalls, its followers'
    /// acknowledgements commit its proposals. But it counts itself toward a majority only for
    /// what its disk holds: with one follower down, nothing commits until the sync ends.
    @Test func aLeaderCommitsThroughItsFollowersWhileItsOwnSyncStallsButNeverCountsItself() async throws {
        let cluster = try TestCluster()
        let stalls = try await cluster.startAll { SyncStall(ofPathsContaining: "/wal/") }
        let leader = try await cluster.waitForLeader()
        let node = try cluster.node(leader)
        _ = try await node.propose(Array("before".utf8))
        let stall = try #require(stalls[leader])
        stall.arm()
        // Set once the proposal is applied (not when it fails: a leader whose loop waited for
        // its disk sent no heartbeats either, and lost its leadership).
        let duringDone = StopFlag(), afterDone = StopFlag()
        let during = Task {
            let index = try await node.propose(Array("during".utf8))
            duringDone.set()
            return index
        }
        try await eventually("the leader's sync to stall") { stall.stalled.isSet }
        let duringAnswered = (try? await eventually("the proposal to commit through the followers", timeout: .seconds(3)) {
            duringDone.isSet
        }) != nil
        #expect(duringAnswered, "the leader's own stalled sync held a proposal its followers had made durable")

        let down = try #require(cluster.ids.first { $0 != leader })
        await cluster.stop(down)
        let after = Task {
            let index = try await node.propose(Array("after".utf8))
            afterDone.set()
            return index
        }
        try await Task.sleep(for: .seconds(1))
        #expect(!afterDone.isSet, "committed with one follower's disk and the leader's unsynced write")
        stall.release()
        _ = try await during.value
        _ = try await after.value
        try await cluster.waitForItems(["before", "during", "after"])
        await cluster.stopAll()
    }

    /// A leader's write the WAL has synced counts as its vote while a later write of its own
    /// is still syncing: with one follower down, the other's answer commits the earlier
    /// proposal without waiting for the later sync.
    @Test func aLeadersSyncedWriteCountsWhileALaterOneIsStillSyncing() async throws {
        // No deferred write may take a held sync.
        let cluster = try TestCluster(walDeferLimit: .seconds(3600))
        let holds = try await cluster.startAll { SyncHolds(ofPathsContaining: "/wal/") }
        let leader = try await cluster.waitForLeader()
        let node = try cluster.node(leader)
        _ = try await node.propose(Array("before".utf8))
        let followers = cluster.ids.filter { $0 != leader }
        let (answering, down) = (followers[0], followers[1])
        await cluster.stop(down)
        // The answering follower's acknowledgements are lost (its heartbeats' answers still
        // arrive, so the leader keeps its quorum) while the leader writes two proposals, each
        // its own WAL batch: the first's sync held until the second is queued behind it.
        cluster.network.setDropRule { message in
            if message.from == answering, case .appendResponse = message.payload { return true }
            return false
        }
        let hold = try #require(holds[leader])
        hold.hold(2)
        let firstDone = StopFlag()
        let first = Task {
            let index = try await node.propose(Array("first".utf8))
            firstDone.set()
            return index
        }
        try await eventually("the leader's sync of the first proposal to be held") { hold.held == 1 }
        let second = Task { try await node.propose(Array("second".utf8)) }
        try await Task.sleep(for: .milliseconds(200))
        hold.release()
        try await eventually("the leader's sync of the second proposal to be held") { hold.held == 2 }
        #expect(!firstDone.isSet, "the first proposal committed without the follower's acknowledgement")
        cluster.network.setDropRule(nil)
        let answered = (try? await eventually("the first proposal to commit", timeout: .seconds(3)) { firstDone.isSet }) != nil
        #expect(answered, "the first proposal waited for the leader's sync of the second")
        hold.release()
        _ = try await first.value
        _ = try await second.value
        try await cluster.waitForItems(["before", "first", "second"])
        await cluster.stopAll()
    }

    /// A leader's write that fails to sync after the leader went on without waiting for it
    /// stops the node, and its proposer hears so at once: in a group of one, nothing but the
    /// durability watch is left to notice (no further Ready comes until the write is durable).
    @Test func aFailedSyncOfALeadersUnconfirmedWriteStopsTheNode() async throws {
        let cluster = try TestCluster(size: 1)
        let disk = UnsyncedChanges(), armed = Mutex(false)
        disk.beforeSync(ofPathsContaining: "/wal/") { _ in
            // The power goes at this sync: it and every later one fail with EIO.
            guard armed.withLock({ armed in defer { armed = false }; return armed }) else { return }
            _ = try? disk.cutPower()
        }
        let node = try await cluster.start(1, disk: disk)
        _ = try await cluster.waitForLeader()
        _ = try await node.propose(Array("before".utf8))
        armed.withLock { $0 = true }
        do {
            _ = try await node.propose(Array("lost".utf8), deadline: .now + .seconds(5))
            Issue.record("a proposal whose write failed to sync was answered")
        } catch RaftNodeError.storageFailed {
            // Expected: the node stopped on the failed sync.
        } catch {
            Issue.record("the proposal failed with \(error), not storageFailed: the failed sync went unnoticed")
        }
        await cluster.stopAll()
    }

    /// A leader of three whose disk fails while its followers carry the commit stops by its
    /// next tick, though nothing more is written: it waits for none of its own syncs then, and
    /// the failed one was the last write (the one after it, the commit index, deferred and
    /// dropped with the failure).
    @Test func aLeaderOfThreeWhoseDiskFailsStopsWithNothingMoreWritten() async throws {
        let cluster = try TestCluster(walDeferLimit: .seconds(3600))
        let cuts = try await cluster.startAll { HeldPowerCut(ofPathsContaining: "/wal/") }
        let leaderID = try await cluster.waitForLeader()
        let leader = try cluster.node(leaderID)
        _ = try await leader.propose(Array("before".utf8))
        // Every acknowledgement of it is in before the next (each follower acknowledges before
        // it learns of the commit).
        try await cluster.waitForItems(["before"])
        let cut = try #require(cuts[leaderID])
        cut.arm()
        // The followers commit it while the leader's own sync is held: its proposer hears so.
        // Their acknowledgements arrive in one step, so that the commit never waits for the
        // leader's sync (with one first, it would, and the durability watch would notice).
        cluster.network.register(leaderID, AcknowledgementsInOneStep(of: leader, from: 2))
        _ = try await leader.propose(Array("last".utf8))
        #expect(cut.held, "the leader's sync of the last write was not held")
        // Then that sync fails (the power goes); nothing more is proposed.
        cut.release()
        let stopped = (try? await eventually("the leader to stop on its failed sync", timeout: .seconds(3)) {
            do {
                try await leader.read()
                return false
            } catch RaftNodeError.storageFailed {
                return true
            } catch {
                return false
            }
        }) != nil
        #expect(stopped, "the leader went on leading after its disk failed")
        // The followers go on without it, with everything it answered.
        let followers = try cluster.ids.filter { $0 != leaderID }.map { try cluster.node($0) }
        try await eventually("a follower to lead") {
            for follower in followers where await follower.status.softState.role == .leader { return true }
            return false
        }
        for follower in followers {
            try await eventually("node \(follower.id) to hold both writes") { await follower.withStateMachine { $0.items } == ["before", "last"] }
        }
        await cluster.stopAll()
    }

    /// A snapshot is written beside the Ready loop: while its fsync stalls, proposals keep
    /// committing and applying.
    @Test func proposalsKeepCommittingWhileASnapshotIsWritten() async throws {
        let cluster = try TestCluster(size: 1, snapshotEveryAppliedEntries: 5)
        let stall = SyncStall(ofPathsContaining: "/snap/")
        let node = try await cluster.start(1, disk: stall.disk)
        _ = try await cluster.waitForLeader()
        var expected: [String] = []
        func propose(_ numbers: ClosedRange<Int>) async throws {
            for number in numbers {
                expected.append("item-\(number)")
                _ = try await node.propose(Array("item-\(number)".utf8))
            }
        }
        try await propose(1...3)
        stall.arm()
        let clock = ContinuousClock()
        // 30 entries take the node past the 5-entry threshold whatever it has applied so far.
        let before = try await clock.measure { try await propose(4...33) }
        try await eventually("a snapshot's fsync to stall") { stall.stalled.isSet }
        // And more while the stall surely lasts.
        let during = try await clock.measure { try await propose(34...43) }
        stall.release()
        #expect(before < .seconds(5), "30 proposals took \(before): the loop waited for a snapshot's stalled fsync")
        #expect(during < .seconds(5), "10 proposals took \(during) while a snapshot's fsync stalled")
        try await eventually("the snapshot to be recorded") { await node.storage.snapshotMetadata.index > 0 }
        try await cluster.waitForItems(expected)
        await cluster.stopAll()
    }

    /// `stop` returns only once the snapshot being written beside the loop is done: closing the
    /// storage releases the directory's lock, and the next node opened there must not find a
    /// snapshot still being written into it. What was being written reaches the disk.
    @Test func stopWaitsForTheSnapshotBeingWritten() async throws {
        let cluster = try TestCluster(size: 1, snapshotEveryAppliedEntries: 5)
        let stall = SyncStall(ofPathsContaining: "/snap/")
        let node = try await cluster.start(1, disk: stall.disk)
        _ = try await cluster.waitForLeader()
        stall.arm()
        for number in 1...10 { _ = try await node.propose(Array("item-\(number)".utf8)) }
        try await eventually("a snapshot's fsync to stall") { stall.stalled.isSet }

        let returnedDuringTheWrite = try await stopReturnsWithin500ms(node, whileStalled: stall)
        #expect(!returnedDuringTheWrite, "stop returned while the node's snapshot was still being written into its directory")
        await cluster.stop(1)

        let reopened = try DurableLogStorage.open(directory: cluster.directory(of: 1))
        defer { reopened.close() }
        #expect(reopened.snapshotMetadata.index >= 5, "the snapshot being written when the node stopped was not recorded")
    }

    /// Stops `node` while `stall` holds a sync; whether `stop` returned within 500 ms. Releases
    /// the stall, and returns once `stop` has.
    func stopReturnsWithin500ms(_ node: TestNode, whileStalled stall: SyncStall) async throws -> Bool {
        let stopped = StopFlag()
        let stopping = Task {
            await node.stop()
            stopped.set()
        }
        try await Task.sleep(for: .milliseconds(500))
        let returned = stopped.isSet
        stall.release()
        await stopping.value
        return returned
    }

    /// The same for a snapshot received from the leader: a follower writes its file in the
    /// Ready loop (on a thread of its own), and `stop` waits for that loop's run to end.
    @Test func stopWaitsForALeadersSnapshotBeingInstalled() async throws {
        let cluster = try TestCluster(snapshotEveryAppliedEntries: 20)
        let (victim, _) = try await leaderCompactsPastADownFollower(
            cluster, entries: (1...50).map { "entry-\($0)" }, compactedPast: 20)
        let stall = SyncStall(ofPathsContaining: "/snap/")
        stall.arm()
        let node = try await cluster.start(victim, disk: stall.disk)
        try await eventually("the leader's snapshot's fsync to stall") { stall.stalled.isSet }

        let returnedDuringTheWrite = try await stopReturnsWithin500ms(node, whileStalled: stall)
        #expect(!returnedDuringTheWrite, "stop returned while the leader's snapshot was still being written into the directory")
        await cluster.stopAll()

        let reopened = try DurableLogStorage.open(directory: cluster.directory(of: victim))
        defer { reopened.close() }
        #expect(reopened.snapshotMetadata.index >= 20, "the leader's snapshot being installed when the node stopped was not recorded")
    }

    /// A proposal not applied by its deadline fails with `proposalTimedOut` rather than wait
    /// for a stalled disk, and may still commit once the disk moves again.
    @Test func aProposalPastItsDeadlineFailsAndMayStillCommit() async throws {
        let cluster = try TestCluster(size: 1)
        let stalling = Mutex(false), release = DispatchSemaphore(value: 0)
        let disk = UnsyncedChanges()
        disk.beforeSync(ofPathsContaining: "/wal/") { _ in
            if stalling.withLock({ $0 }) { _ = release.wait(timeout: .now() + 10) }
        }
        let node = try await cluster.start(1, disk: disk)
        _ = try await cluster.waitForLeader()
        _ = try await node.propose(Array("before".utf8))

        stalling.withLock { $0 = true }
        let start = ContinuousClock.now
        var failure: (any Error)?
        do {
            _ = try await node.propose(Array("stalled".utf8), deadline: .now + .milliseconds(300))
        } catch {
            failure = error
        }
        let waited = ContinuousClock.now - start
        stalling.withLock { $0 = false }
        release.signal()
        guard case .proposalTimedOut = failure as? RaftNodeError else {
            Issue.record("expected proposalTimedOut, got \(String(describing: failure)) after \(waited)")
            await cluster.stopAll()
            return
        }
        #expect(waited < .seconds(10), "the deadline was 300 ms (the default is 30 s); the proposal failed after \(waited)")
        _ = try await node.propose(Array("after".utf8))
        try await cluster.waitForItems(["before", "stalled", "after"])
        await cluster.stopAll()
    }

    @Test func readBarrierOnAFollowerWaitsForEveryAcknowledgedWrite() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let leaderID = try await cluster.waitForLeader()
        let leader = try cluster.node(leaderID)
        let followerID = try #require(cluster.ids.first { $0 != leaderID })
        let follower = try cluster.node(followerID)
        // The follower hears the leader's heartbeats but not its appends: it misses the write,
        // which the leader commits with the third node.
        cluster.network.setDropRule { message in
            guard message.to == followerID else { return false }
            if case .append = message.payload { return true }
            return false
        }
        _ = try await leader.propose(Array("written".utf8))
        try await Task.sleep(for: .milliseconds(100))
        #expect(await follower.withStateMachine { $0.items }.isEmpty)
        // The leader confirms the read index, but the follower has not applied up to it: the
        // barrier must wait.
        let returned = StopFlag()
        let barrier = Task {
            try await follower.read()
            returned.set()
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(await follower.withStateMachine { $0.items }.isEmpty)
        #expect(!returned.isSet, "read() returned before the write was applied")
        cluster.network.setDropRule(nil)
        try await barrier.value
        #expect(await follower.withStateMachine { $0.items } == ["written"])
        try await leader.read()
        #expect(await leader.withStateMachine { $0.items } == ["written"])
        await cluster.stopAll()
    }

    /// A leader cut off from its followers steps down (CheckQuorum) and fails what it was
    /// asked to commit, instead of keeping the proposer waiting until the partition heals.
    @Test func aProposalOnALeaderThatLosesItsQuorumFailsPromptly() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let leaderID = try await cluster.waitForLeader()
        let leader = try cluster.node(leaderID)
        cluster.network.isolate(leaderID)
        let outcome = Mutex<(any Error)?>(nil)
        let finished = Mutex(false)
        let proposer = Task {
            do {
                _ = try await leader.propose(Array("cut off".utf8))
            } catch {
                outcome.withLock { $0 = error }
            }
            finished.withLock { $0 = true }
        }
        try await eventually("the cut-off leader's proposal to fail", timeout: .seconds(10)) { finished.withLock { $0 } }
        let error = outcome.withLock { $0 }
        guard case .leadershipLost = error as? RaftNodeError else {
            Issue.record("expected leadershipLost, got \(String(describing: error))")
            return
        }
        cluster.network.healAll()
        await proposer.value
        await cluster.stopAll()
    }

    @Test func readBarrierCutOffFromTheLeaderTimesOut() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let leaderID = try await cluster.waitForLeader()
        let followerID = try #require(cluster.ids.first { $0 != leaderID })
        let follower = try cluster.node(followerID)
        cluster.network.setDropRule { message in
            if case .readIndex = message.payload { return true }
            return false
        }
        await #expect(throws: RaftNodeError.readTimedOut) { try await follower.read() }
        cluster.network.setDropRule(nil)
        try await follower.read()
        await cluster.stopAll()
    }
}

/// Items acknowledged to the clients, shared between their tasks.
final class Acknowledged: Sendable {
    private let state = Mutex<Set<String>>([])
    func add(_ item: String) { state.withLock { _ = $0.insert(item) } }
    var count: Int { state.withLock { $0.count } }
    var items: Set<String> { state.withLock { $0 } }
}

/// A disk whose first sync of a file under `ofPathsContaining` once armed stalls until released
/// (20 s at most).
final class SyncStall: HookedDisk, Sendable {
    let disk = UnsyncedChanges()
    let stalled = StopFlag()
    private let armed = Mutex(false)
    private let permit = DispatchSemaphore(value: 0)

    init(ofPathsContaining path: String) {
        disk.beforeSync(ofPathsContaining: path) { [weak self] _ in
            guard let self, armed.withLock({ armed in defer { armed = false }; return armed }) else { return }
            stalled.set()
            _ = permit.wait(timeout: .now() + 20)
        }
    }

    func arm() { armed.withLock { $0 = true } }
    func release() { permit.signal() }
}

/// Stands for a node on the network and hands it the acknowledgements of appends (the first
/// from each of `count` followers) in one batch, which it steps at once; everything else as it
/// comes.
final class AcknowledgementsInOneStep: RaftMessageReceiver {
    private let node: TestNode
    private let count: Int
    private let held = Mutex<[Message]?>([])

    init(of node: TestNode, from count: Int) {
        self.node = node
        self.count = count
    }

    func receive(_ messages: [Message]) {
        let deliver = held.withLock { held -> [Message] in
            guard var waiting = held else { return messages }
            var now: [Message] = []
            for message in messages {
                if case .appendResponse = message.payload, !waiting.contains(where: { $0.from == message.from }) {
                    waiting.append(message)
                } else {
                    now.append(message)
                }
            }
            guard waiting.count >= count else {
                held = waiting
                return now
            }
            held = nil
            return now + waiting
        }
        if !deliver.isEmpty { node.receive(deliver) }
    }
}

/// A disk whose first sync of files under `ofPathsContaining` once armed is held until
/// released (20 s at most) and then fails with the power gone, as every sync after it.
final class HeldPowerCut: HookedDisk, Sendable {
    let disk = UnsyncedChanges()
    private let state = Mutex((armed: false, held: false))
    private let permit = DispatchSemaphore(value: 0)

    init(ofPathsContaining path: String) {
        disk.beforeSync(ofPathsContaining: path) { [weak self] _ in
            guard let self else { return }
            let holds = state.withLock { state in
                guard state.armed else { return false }
                state.armed = false
                state.held = true
                return true
            }
            guard holds else { return }
            _ = permit.wait(timeout: .now() + 20)
            _ = try? disk.cutPower()
        }
    }

    func arm() { state.withLock { $0.armed = true } }
    var held: Bool { state.withLock { $0.held } }
    func release() { permit.signal() }
}

/// A disk whose next `count` syncs of files under `ofPathsContaining`, once asked, are each
/// held until released (20 s at most), one release per sync.
final class SyncHolds: HookedDisk, Sendable {
    let disk = UnsyncedChanges()
    private let state = Mutex((toHold: 0, held: 0))
    private let permit = DispatchSemaphore(value: 0)

    init(ofPathsContaining path: String) {
        disk.beforeSync(ofPathsContaining: path) { [weak self] _ in
            guard let self else { return }
            let holds = state.withLock { state in
                guard state.toHold > 0 else { return false }
                state.toHold -= 1
                state.held += 1
                return true
            }
            if holds { _ = permit.wait(timeout: .now() + 20) }
        }
    }

    func hold(_ count: Int) { state.withLock { $0.toHold = count } }
    /// Syncs held so far (released or not).
    var held: Int { state.withLock { $0.held } }
    func release() { permit.signal() }
}

final class StopFlag: Sendable {
    private let state = Mutex(false)
    func set() { state.withLock { $0 = true } }
    var isSet: Bool { state.withLock { $0 } }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
