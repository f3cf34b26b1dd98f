import Synchronization
import Testing
@testable import Raft

/// `RaftNode.submit`: proposals handed in without awaiting the node end as `propose` ends, each
/// completion called once.
@Suite("Raft node submissions", .serialized, .timeLimit(.minutes(2)))
struct RaftNodeSubmissionTests {
    /// What the completions of a run of submissions were called with, in the order called.
    final class Outcomes: Sendable {
        private let state = Mutex<[(item: String, outcome: Result<(index: UInt64, read: String?), any Error>)]>([])

        func record(_ item: String, _ outcome: Result<(index: UInt64, read: String?), any Error>) {
            state.withLock { $0.append((item, outcome)) }
        }

        var all: [(item: String, outcome: Result<(index: UInt64, read: String?), any Error>)] { state.withLock { $0 } }
    }

    /// Submits each of `items`, its batch started by `starts` if given (at once otherwise).
    static func submit(_ items: [String], to node: TestNode, startingWith starts: HeldStarts? = nil, into outcomes: Outcomes) {
        for item in items {
            // What the state machine's last item is as the entry applies: the entry itself.
            node.submit(Array(item.utf8), reading: { machine, _ in machine.items.last }, startBatch: { start in
                if let starts { starts.hold(start) } else { start() }
            }) { outcome in
                outcomes.record(item, outcome)
            }
        }
    }

    @Test func submissionsCommitInTheOrderSubmittedAndCompleteOnceWithWhatWasRead() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let leader = try cluster.node(try await cluster.waitForLeader())
        let items = (1...40).map { "item-\($0)" }
        let outcomes = Outcomes()
        // In two runs, the second submitted while the first may still be on its way in.
        Self.submit(Array(items.prefix(20)), to: leader, into: outcomes)
        Self.submit(Array(items.dropFirst(20)), to: leader, into: outcomes)
        try await eventually("every completion called") { outcomes.all.count >= items.count }
        // Nothing called twice, a moment later either.
        try await Task.sleep(for: .milliseconds(200))
        let all = outcomes.all
        #expect(all.count == items.count, "\(all.count) completions for \(items.count) submissions")
        var indexes: [String: UInt64] = [:]
        for (item, outcome) in all {
            switch outcome {
            case .success(let (index, read)):
                #expect(read == item, "\(item) read \(String(describing: read)) as it applied")
                indexes[item] = index
            case .failure(let error):
                Issue.record("\(item) failed: \(error)")
            }
        }
        let ordered = items.compactMap { indexes[$0] }
        #expect(ordered.count == items.count && ordered == ordered.sorted() && Set(ordered).count == ordered.count,
                "indexes in the order submitted: \(ordered)")
        // Applied on every node, in the same order.
        try await cluster.waitForItems(items)
        await cluster.stopAll()
    }

    /// The start of a batch, as `startBatch` is handed it: held until the test runs it.
    final class HeldStarts: Sendable {
        private let starts = Mutex<[@Sendable () -> Void]>([])

        func hold(_ start: @escaping @Sendable () -> Void) { starts.withLock { $0.append(start) } }

        var count: Int { starts.withLock { $0.count } }

        func runAll() {
            for start in starts.withLock({ held in defer { held = [] }; return held }) { start() }
        }
    }

    @Test func submissionsWaitForTheirBatchToStartAndJoinIt() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let leader = try cluster.node(try await cluster.waitForLeader())
        let items = (1...5).map { "held-\($0)" }
        let outcomes = Outcomes()
        let starts = HeldStarts()
        Self.submit(items, to: leader, startingWith: starts, into: outcomes)
        // One start for the five, and nothing appended before it runs (an event loop's pass
        // still reading requests).
        #expect(starts.count == 1, "\(starts.count) batch starts asked for 5 submissions")
        try await Task.sleep(for: .milliseconds(300))
        #expect(outcomes.all.isEmpty, "\(outcomes.all.count) completions before the batch started")
        starts.runAll()
        try await eventually("every completion called") { outcomes.all.count == items.count }
        let indexes = outcomes.all.compactMap { try? $0.outcome.get().index }
        #expect(indexes.count == items.count && indexes == indexes.sorted(), "indexes in the order submitted: \(indexes)")
        // A submission after the batch was taken asks for a start of its own.
        Self.submit(["after"], to: leader, startingWith: starts, into: outcomes)
        #expect(starts.count == 1)
        starts.runAll()
        try await eventually("the later submission's completion") { outcomes.all.count == items.count + 1 }
        try await cluster.waitForItems(items + ["after"])
        await cluster.stopAll()
    }

    /// The gateway falls back to forwarding on this `notLeader` (`submitWhileLeading`'s
    /// `otherwise`): it must come with nothing appended, and name the new leader.
    @Test func aSubmissionWhoseBatchStartsAfterItsNodeLostLeadershipFailsWithNothingAppended() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let formerID = try await cluster.waitForLeader()
        let former = try cluster.node(formerID)
        _ = try await former.propose(Array("before".utf8))
        let outcomes = Outcomes()
        let starts = HeldStarts()
        // Submitted while leading (its batch not yet started, as an event loop's pass would
        // hold it), then leadership moves on.
        Self.submit(["orphan"], to: former, startingWith: starts, into: outcomes)
        let successorID = try #require(cluster.ids.first { $0 != formerID })
        try await former.transferLeadership(to: successorID)
        try await eventually("the successor to lead") { await (try cluster.node(successorID)).status.softState.role == .leader }
        try await eventually("the former leader to follow") { await former.status.softState.role == .follower }
        starts.runAll()
        try await eventually("the orphan's completion") { outcomes.all.count == 1 }
        guard case .failure(RaftNodeError.notLeader(let hint)) = outcomes.all.first?.outcome else {
            Issue.record("expected notLeader, got \(String(describing: outcomes.all.first?.outcome))")
            await cluster.stopAll()
            return
        }
        #expect(hint == successorID, "notLeader named \(hint), not the new leader \(successorID)")
        // Nothing of it reached any log: the next entry every node applies follows "before".
        _ = try await (try cluster.node(successorID)).propose(Array("after".utf8))
        try await cluster.waitForItems(["before", "after"])
        await cluster.stopAll()
    }

    @Test func aSubmissionOnAFollowerOrAStoppedNodeFailsAsAProposalWould() async throws {
        let cluster = try TestCluster()
        try await cluster.startAll()
        let leaderID = try await cluster.waitForLeader()
        let followerID = try #require(cluster.ids.first { $0 != leaderID })
        let outcomes = Outcomes()
        Self.submit(["on-a-follower"], to: try cluster.node(followerID), into: outcomes)
        try await eventually("the follower's completion") { outcomes.all.count == 1 }
        guard case .failure(RaftNodeError.notLeader(let hint)) = outcomes.all.first?.outcome else {
            Issue.record("expected notLeader, got \(String(describing: outcomes.all.first?.outcome))")
            await cluster.stopAll()
            return
        }
        #expect(hint == leaderID)

        let leader = try cluster.node(leaderID)
        await leader.stop()
        Self.submit(["on-a-stopped-node"], to: leader, into: outcomes)
        try await eventually("the stopped node's completion") { outcomes.all.count == 2 }
        guard case .failure(RaftNodeError.stopped) = outcomes.all.last?.outcome else {
            Issue.record("expected stopped, got \(String(describing: outcomes.all.last?.outcome))")
            await cluster.stopAll()
            return
        }
        await cluster.stopAll()
    }
}
