import Foundation
import Testing

/// Runs the cases of CPU-bound tests (the Raft simulation's seed batches, seeded property runs,
/// fuzzers, history checks) each on a thread of its own (`DedicatedThreadExecutor`), at most
/// `limit` at a time across the run, the others waiting without holding a thread.
///
/// Swift Testing starts every case at once on Swift's pool, two threads here, and a synchronous
/// test holds its pool thread until it returns. Two such tests at once stopped every other test
/// in the process for seconds at a time (up to 5 s in the first minute of a full run, measured
/// with a probe on the pool): the in-process Raft clusters, whose ticks and elections need the
/// pool every 10 ms, found no leader within 10 s (`RaftNodeTests`, the CI failures of 91e0526
/// and f6bb577). Off the pool, they share the cores through the kernel's scheduler, which keeps
/// every thread going. The limit comes from `FLOTILLA_CPU_BOUND_CONCURRENCY` (default 1; a run
/// of the simulation alone wants 2).
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
        try await runOnAThreadOfItsOwn(test, limiter: Self.limiter, function)
    }
}

extension Trait where Self == CPUBoundTrait {
    /// Each case on a thread of its own, one CPU-bound case at a time (`CPUBoundTrait`).
    public static var cpuBound: Self { Self() }
}
