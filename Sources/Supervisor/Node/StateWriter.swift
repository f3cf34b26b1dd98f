import Dispatch
import Synchronization

/// Writes instance state files atomically (temp, fsync, rename, directory fsync) on a thread of
/// its own, keeping only the latest content per file: the event loop never waits for a disk,
/// and a burst of transitions costs one write. A state file may thus lag the instance by one
/// write; adoption copes (a process it does not find is handled as one that died, and the
/// instance's cgroup, which holds whatever did run, is cleaned up).
final class StateWriter: Sendable {
    private let queue = DispatchQueue(label: "flotilla.state-writer")
    private let pending = Mutex<[String: @Sendable () -> [UInt8]]>([:])

    /// Queues the next content of `path`; `encode` makes it on the writer's thread (encoding a
    /// record costs more than the event loop should spend per transition).
    func submit(to path: String, _ encode: @escaping @Sendable () -> [UInt8]) {
        let schedule = pending.withLock { pending -> Bool in
            defer { pending[path] = encode }
            return pending.isEmpty
        }
        if schedule { queue.async { self.drain() } }
    }

    /// Returns once everything submitted so far is on disk.
    func flush() {
        queue.sync { self.drain() }
    }

    private func drain() {
        while let (path, encode) = pending.withLock({ $0.popFirst() }) {
            // A failed write is retried by the next transition's; the directory may also be
            // gone (the instance was removed), which is fine.
            try? FileSystem.writeAtomically(encode(), to: path)
        }
    }
}
