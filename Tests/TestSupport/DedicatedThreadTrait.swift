import Foundation
import Testing

/// Runs each test (each case of a parameterized one) on a thread of its own
/// (`DedicatedThreadExecutor`), with at most `limit` such tests at once across the run.
///
/// For the integration suites: they block (waiting for processes, sleeping between polls) and
/// they launch real services, so running them on the cooperative pool starves the code under
/// test, and running all of them at once overloads two cores. The limit comes from
/// `FLOTILLA_TEST_CONCURRENCY` (default 3).
public struct DedicatedThreadTrait: TestTrait, SuiteTrait, TestScoping {
    public var isRecursive: Bool { true }

    static let limiter = AsyncLimiter(
        limit: ProcessInfo.processInfo.environment["FLOTILLA_TEST_CONCURRENCY"].flatMap(Int.init).map { max(1, $0) } ?? 3)

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

/// Runs `function` (a test case) on a thread of its own once `limiter` gives it a permit: what
/// `DedicatedThreadTrait` and `CPUBoundTrait` share; they differ only in their limiter.
func runOnAThreadOfItsOwn(
    _ test: Test, limiter: AsyncLimiter, _ function: @Sendable () async throws -> Void
) async throws {
    try await limiter.withPermit {
        let executor = DedicatedThreadExecutor(name: test.name)
        defer { executor.shutdown() }
        try await withTaskExecutorPreference(executor) { try await function() }
    }
}

extension Trait where Self == DedicatedThreadTrait {
    /// Each test on a thread of its own, a few at a time (`DedicatedThreadTrait`).
    public static var dedicatedThread: Self { Self() }
}

/// At most `limit` holders at once; the others wait without holding a thread.
public actor AsyncLimiter {
    private var available: Int
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(limit: Int) { available = limit }

    /// Runs `body` once a permit is free, and frees it after.
    public nonisolated func withPermit<T: Sendable>(_ body: @Sendable () async throws -> T) async throws -> T {
        await acquire()
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }

    private func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    private func release() {
        if waiters.isEmpty {
            available += 1
        } else {
            waiters.removeFirst().resume()
        }
    }
}
