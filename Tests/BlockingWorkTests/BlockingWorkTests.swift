import BlockingWork
import Dispatch
import Foundation
import Synchronization
import Testing

/// `BlockingWork.run` exists so that blocking file work (snapshot writes, whole-log reads,
/// unmounts) never holds a thread of Swift's pool, which has one per core.
@Suite struct BlockingWorkTests {
    @Test func blockingWorkLeavesSwiftsPoolFree() async {
        // As many blocked calls as the pool has threads. Run on the pool, they could not all
        // begin (this test's task holds a thread while it polls) until one's 20 s wait ended.
        // On Dispatch they begin at once: Dispatch keeps a thread per core of its own.
        let calls = ProcessInfo.processInfo.activeProcessorCount
        let release = DispatchSemaphore(value: 0)
        let inside = Counter()
        let started = ContinuousClock.now
        let blocked = (0..<calls).map { _ in
            Task {
                await BlockingWork.run {
                    inside.value.add(1, ordering: .relaxed)
                    _ = release.wait(timeout: .now() + 20)
                }
            }
        }
        while inside.value.load(ordering: .relaxed) < calls { usleep(1_000) }
        let allBegun = ContinuousClock.now
        for _ in 0..<calls { release.signal() }
        for call in blocked { await call.value }
        #expect(allBegun - started < .seconds(5), "the blocking calls took \(allBegun - started) to begin")
    }
}

/// How many blocking calls have begun.
private final class Counter: Sendable {
    let value = Atomic<Int>(0)
}
