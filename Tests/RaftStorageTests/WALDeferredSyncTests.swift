import Foundation
import Testing
@testable import Raft

/// Batches submitted with `mustSync` false (a Raft hard state whose commit index alone moved)
/// wait for the next batch that must be durable instead of costing a write and an fdatasync
/// of their own; but never for long, never past a caller that waits for them, and never past
/// a close.
///
/// Bounds are generous: in the full suite the simulations fill Swift's pool for most of a
/// minute, and a task of these may wait that long to run again (a 30 s bound failed so).
@Suite("Write-ahead log: deferred batches")
struct WALDeferredSyncTests {
    /// A limit no test reaches, so that only what the test does can get a batch written.
    private static let options = WriteAheadLog.Options(segmentBytes: 1 << 20, deferLimit: .seconds(3600))

    @Test func aBatchThatNeedNotBeDurableGoesOutWithTheNextOneThatMust() async throws {
        let directory = try TemporaryDirectory()
        do {
            let (log, _) = try WriteAheadLog.open(directory: directory.path, options: Self.options)
            defer { log.close() }
            try await log.append(testEntries(1...3).map(WALRecord.entry))
            let before = log.statistics
            _ = try log.submit([.hardState(HardState(term: 1, vote: 1, commit: 3))], mustSync: false)
            try await Task.sleep(for: .milliseconds(200))
            #expect(log.statistics == before, "a deferred batch was written on its own")
            try await log.append(testEntries(4...5).map(WALRecord.entry))
            let after = log.statistics
            #expect(after.batchesWritten == before.batchesWritten + 2)
            #expect(after.syncs == before.syncs + 1, "the deferred batch and the next one should share one sync")
        }
        let (log, recovered) = try WriteAheadLog.open(directory: directory.path, options: Self.options)
        log.close()
        #expect(recovered.entries == testEntries(1...5))
        #expect(recovered.hardState == HardState(term: 1, vote: 1, commit: 3))
    }

    @Test func waitingForADeferredBatchWritesItAtOnce() async throws {
        let directory = try TemporaryDirectory()
        // Without the waiter's wakeup, the wait would end only at the limit.
        let options = WriteAheadLog.Options(segmentBytes: 1 << 20, deferLimit: .seconds(100))
        let (log, _) = try WriteAheadLog.open(directory: directory.path, options: options)
        defer { log.close() }
        let before = log.statistics
        let ticket = try log.submit([.hardState(HardState(term: 2, vote: 1, commit: 0))], mustSync: false)
        let clock = ContinuousClock()
        let started = clock.now
        try await log.waitUntilDurable(ticket)
        let waited = clock.now - started
        #expect(waited < .seconds(90), "the wait took \(waited): the writer was not told of the waiter")
        #expect(log.statistics.syncs == before.syncs + 1)
    }

    @Test func aDeferredBatchAloneIsWrittenWithinTheLimit() async throws {
        let directory = try TemporaryDirectory()
        let options = WriteAheadLog.Options(segmentBytes: 1 << 20, deferLimit: .milliseconds(300))
        let (log, _) = try WriteAheadLog.open(directory: directory.path, options: options)
        defer { log.close() }
        let before = log.statistics
        _ = try log.submit([.hardState(HardState(term: 3, vote: 1, commit: 0))], mustSync: false)
        try await eventually("the deferred batch on disk", timeout: .seconds(60)) {
            log.statistics.batchesWritten == before.batchesWritten + 1
        }
        #expect(log.statistics.syncs == before.syncs + 1)
    }

    @Test func closingWritesADeferredBatch() async throws {
        let directory = try TemporaryDirectory()
        do {
            let (log, _) = try WriteAheadLog.open(directory: directory.path, options: Self.options)
            _ = try log.submit([.hardState(HardState(term: 4, vote: 2, commit: 0))], mustSync: false)
            log.close()
        }
        let (log, recovered) = try WriteAheadLog.open(directory: directory.path, options: Self.options)
        log.close()
        #expect(recovered.hardState == HardState(term: 4, vote: 2, commit: 0))
    }
}
