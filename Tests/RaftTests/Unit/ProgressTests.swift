import Testing
@testable import Raft

@Suite struct InflightsTests {
    @Test func fillsFreesAndWrapsAround() {
        var inflights = Inflights(capacity: 3)
        inflights.add(10)
        inflights.add(20)
        inflights.add(30)
        #expect(inflights.isFull)
        inflights.free(upTo: 15)
        #expect(inflights.count == 2)
        inflights.add(40)
        #expect(inflights.isFull)
        // Freeing below the oldest frees nothing; in the middle frees a prefix.
        inflights.free(upTo: 19)
        #expect(inflights.count == 3)
        inflights.free(upTo: 35)
        #expect(inflights.count == 1)
        inflights.add(50)
        inflights.add(60)
        inflights.free(upTo: 1_000)
        #expect(inflights.count == 0)
        inflights.add(70)
        inflights.reset()
        #expect(inflights.count == 0 && !inflights.isFull)
    }
}

@Suite struct ProgressTests {
    @Test func probeSendsOneAppendThenWaits() {
        var progress = Progress(next: 5, maxInflight: 4)
        #expect(!progress.isPaused)
        progress.sentEntries(count: 2, lastIndex: 6)
        #expect(progress.isPaused)
        #expect(progress.next == 5, "a probe does not advance next")
        _ = progress.heartbeatAnswered(readRound: 0)
        #expect(!progress.isPaused)
    }

    @Test func acknowledgementMovesProbeToReplicate() {
        var progress = Progress(next: 5, maxInflight: 2)
        progress.sentEntries(count: 2, lastIndex: 6)
        let outcome = progress.acknowledge(upTo: 6, leaderFirstIndex: 1)
        #expect(outcome.updated && outcome.wasPaused)
        #expect(progress.state == .replicate)
        #expect(progress.match == 6 && progress.next == 7)
        // Pipelining: next advances optimistically up to the window.
        progress.sentEntries(count: 3, lastIndex: 9)
        progress.sentEntries(count: 1, lastIndex: 10)
        #expect(progress.next == 11 && progress.isPaused)
        let result1 = progress.acknowledge(upTo: 6, leaderFirstIndex: 1).updated
        #expect(!result1, "old acknowledgements are ignored")
        let result2 = progress.acknowledge(upTo: 9, leaderFirstIndex: 1).updated
        #expect(result2)
        #expect(!progress.isPaused)
    }

    @Test func staleRejectionsAreIgnored() {
        var progress = Progress(next: 11, maxInflight: 4)
        progress.match = 8
        progress.becomeReplicate()
        let result3 = progress.reject(at: 7, hint: 7)
        #expect(!result3, "rejecting below match is stale")
        let result4 = progress.reject(at: 10, hint: 3)
        #expect(result4)
        #expect(progress.state == .probe && progress.next == 9, "back to match + 1 in replicate")
        progress.sentEntries(count: 1, lastIndex: 9)
        let result5 = progress.reject(at: 12, hint: 3)
        #expect(!result5, "a probe rejection must be for next - 1")
    }

    @Test func probeRejectionUsesTheHint() {
        var progress = Progress(next: 21, maxInflight: 4)
        progress.match = 2
        let result6 = progress.reject(at: 20, hint: 13)
        #expect(result6)
        #expect(progress.next == 14)
        let result7 = progress.reject(at: 13, hint: 0)
        #expect(result7)
        #expect(progress.next == 3, "never below match + 1")
    }

    @Test func snapshotStateWaitsThenResumes() {
        var progress = Progress(next: 3, maxInflight: 4)
        progress.becomeSnapshot(index: 50)
        #expect(progress.isPaused)
        // An acknowledgement of the snapshot index reconnects the follower to the log.
        let result8 = progress.acknowledge(upTo: 50, leaderFirstIndex: 51).updated
        #expect(result8)
        #expect(progress.state == .replicate && progress.next == 51)
    }

    @Test func majorityValue() {
        #expect(LeaderState.majorityValue([5]) == 5)
        #expect(LeaderState.majorityValue([5, 9]) == 5)
        #expect(LeaderState.majorityValue([5, 9, 7]) == 7)
        #expect(LeaderState.majorityValue([1, 9, 7, 3]) == 3)
        #expect(LeaderState.majorityValue([1, 9, 7, 3, 8]) == 7)
    }
}
