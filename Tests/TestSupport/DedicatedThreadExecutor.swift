import Foundation

/// A task executor with one thread of its own, for a test that blocks: `Process.waitUntilExit`,
/// `usleep`, a blocking read. Run on Swift's cooperative pool (as wide as the machine has
/// cores: two here) such a test holds a pool thread for as long as it blocks, and the code under
/// test, which needs that pool, starves; run here it holds only its own thread.
///
/// Jobs that arrive after `shutdown` (an unstructured task the test left running inherits the
/// preference) go to the global concurrent executor, so nothing is dropped.
public final class DedicatedThreadExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` and `stopping` are guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopping = false

    /// Starts the thread, named `name` (it shows in a debugger's thread list).
    public init(name: String) {
        let thread = Thread { [self] in run() }
        thread.name = name
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        if stopping {
            condition.unlock()
            globalConcurrentExecutor.enqueue(job)
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Lets the thread end once its queue is empty.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            guard !jobs.isEmpty else {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
    }
}
