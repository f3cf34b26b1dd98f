import Foundation
import Synchronization
import Testing
@testable import Raft

/// `WriteAheadLog.whenDurable`: work done on the writer thread once a batch is durable (a
/// follower's acknowledgement leaves so, without a hop through its actor first).
@Suite("Write-ahead log: work when durable", .timeLimit(.minutes(1)))
struct WALWhenDurableTests {
    /// A log whose syncs wait, while `stalling` is set, until `release` is signalled (10 s at most).
    private static func open(
        _ directory: TemporaryDirectory, stalling: StopFlag, release: DispatchSemaphore, disk: UnsyncedChanges = UnsyncedChanges()
    ) throws -> WriteAheadLog {
        disk.beforeSync(ofPathsContaining: "/") { _ in
            if stalling.isSet { _ = release.wait(timeout: .now() + 10) }
        }
        return try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20, unsyncedChanges: disk)).log
    }

    /// The work runs after the sync, and before anyone else may see the batch durable: a
    /// waiter that came first, or one that starts while the work runs (a Raft node's next
    /// message must not overtake an acknowledgement sent here).
    @Test func theWorkRunsOnceTheBatchIsSyncedAndBeforeAnyoneSeesItDurable() async throws {
        let directory = try TemporaryDirectory()
        let stalling = StopFlag(), release = DispatchSemaphore(value: 0)
        let log = try Self.open(directory, stalling: stalling, release: release)
        defer { log.close() }
        try await log.append(testEntries(1...2).map(WALRecord.entry))
        let before = log.statistics.batchesWritten

        stalling.set()
        let events = Events()
        let ticket = try log.submit(testEntries(3...4).map(WALRecord.entry))
        let waiter = Task {
            try await log.waitUntilDurable(ticket)
            events.add("waiter")
        }
        log.whenDurable(ticket) { outcome in
            Task {
                try await log.waitUntilDurable(ticket)
                events.add("late waiter")
            }
            Thread.sleep(forTimeInterval: 0.2)
            // What the log counts as written by now: this batch too.
            events.add("work \(outcome.isSuccess) written \(log.statistics.batchesWritten - before)")
        }
        try await Task.sleep(for: .milliseconds(200))
        #expect(events.all == [], "done before the batch's sync")
        stalling.clear()
        release.signal()
        try await waiter.value
        try await eventually("the late waiter returns") { events.all.count == 3 }
        let seen = events.all
        #expect(seen.first == "work true written 1", "\(seen)")
        #expect(Set(seen.dropFirst()) == ["waiter", "late waiter"], "\(seen)")
    }

    @Test func workOnABatchAlreadyDurableRunsAtOnce() async throws {
        let directory = try TemporaryDirectory()
        let log = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: 1 << 20)).log
        defer { log.close() }
        let ticket = try log.submit(testEntries(1...2).map(WALRecord.entry))
        try await log.waitUntilDurable(ticket)
        let ran = Mutex(false)
        log.whenDurable(ticket) { outcome in ran.withLock { $0 = outcome.isSuccess } }
        #expect(ran.withLock { $0 })
    }

    @Test func workIsToldOfAFailedWrite() async throws {
        let directory = try TemporaryDirectory()
        let stalling = StopFlag(), release = DispatchSemaphore(value: 0), disk = UnsyncedChanges()
        let log = try Self.open(directory, stalling: stalling, release: release, disk: disk)
        defer { log.close() }
        try await log.append(testEntries(1...2).map(WALRecord.entry))
        stalling.set()
        let ticket = try log.submit(testEntries(3...4).map(WALRecord.entry))
        let (outcomes, input) = AsyncStream.makeStream(of: Bool.self)
        log.whenDurable(ticket) { outcome in
            input.yield(outcome.isSuccess)
            input.finish()
        }
        // The sync the writer is held before fails: the power is gone.
        _ = try disk.cutPower()
        stalling.clear()
        release.signal()
        var told: [Bool] = []
        for await outcome in outcomes { told.append(outcome) }
        #expect(told == [false])
    }
}

final class Events: Sendable {
    private let list = Mutex<[String]>([])
    func add(_ event: String) { list.withLock { $0.append(event) } }
    var all: [String] { list.withLock { $0 } }
}

extension Result {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }
}
