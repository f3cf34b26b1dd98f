import Dispatch

/// Runs blocking work (file writes with fsync, unlinks with a directory fsync, reads of whole log
/// files, unpacking) on a Dispatch thread and suspends the caller until it is done.
///
/// Not in a task, however `@concurrent`: Swift's pool has one thread per core (two here), so a
/// 200 ms snapshot write held half of every task's threads (Raft, the API, the transport's
/// handlers) meanwhile. Dispatch's global queue has threads of its own, none of them a task's.
public enum BlockingWork {
    public static func run<Value: Sendable, Failure: Error>(
        _ work: @escaping @Sendable () throws(Failure) -> Value
    ) async throws(Failure) -> Value {
        let result = await withCheckedContinuation { (continuation: CheckedContinuation<Result<Value, Failure>, Never>) in
            DispatchQueue.global().async { continuation.resume(returning: Result { () throws(Failure) in try work() }) }
        }
        return try result.get()
    }
}
