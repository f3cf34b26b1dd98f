import Foundation
import Testing

/// Runs the cases of CPU-bound tests (the Raft simulation's seed batches, the formation
/// simulations' seeds) at most `limit` at a time across the run, the others waiting without
/// holding a thread.
///
/// Swift Testing starts every case at once on Swift's pool, two threads here. Eighty seed
/// batches of about a second each then filled it for the first 44-50 s of every full run:
/// every other pure test's next step queued behind them, and a test with a bound on a wait
/// (a stream's producer, the WAL's waiter) failed. Holding a turn, a batch runs on one pool
/// thread and queues behind the others' steps when it ends. The limit comes from
/// `FLOTILLA_CPU_BOUND_CONCURRENCY` (default 1; a run of the simulation alone wants 2).
public struct CPUBoundTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    static let limiter = AsyncLimiter(
        limit: ProcessInfo.processInfo.environment["FLOTILLA_CPU_BOUND_CONCURRENCY"].flatMap(Int.init).map { max(1, $0) } ?? 1)

    /// The scope is provided around every test case, never around a whole suite.
    public func scopeProvider(for test: Test, testCase: Test.Case?) -> Self? {
        testCase == nil ? nil : self
    }

    public func provideScope(
        for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
    ) async throws {
        try await Self.limiter.withPermit { try await function() }
    }
}

extension Trait where Self == CPUBoundTrait {
    /// At most one case of CPU-bound tests at a time (`CPUBoundTrait`).
    public static var cpuBound: Self { Self() }
}
