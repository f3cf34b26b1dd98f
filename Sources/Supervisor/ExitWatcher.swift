import Synchronization

/// Waits, on one thread, for any held pidfd to become readable (the process exited) and
/// finishes that instance there. A thousand idle services cost one blocked thread and no CPU.
final class ExitWatcher: Sendable {
    private let descriptors: DescriptorWatcher
    private let watchedCount = Atomic<Int>(0)

    /// Starts the thread.
    init() throws(SystemCallError) {
        descriptors = try DescriptorWatcher(name: "exits")
    }

    /// Stops and joins the thread; instances still running stay as they are.
    func stop() {
        descriptors.stop()
    }

    /// Watches `instance` until its main process exits.
    func watch(_ instance: InstanceHandle) throws(SystemCallError) {
        watchedCount.add(1, ordering: .relaxed)
        do {
            try descriptors.addOneShot(instance.pidFD.descriptor) { [weak self] _ in
                self?.watchedCount.subtract(1, ordering: .relaxed)
                instance.processExited()
            }
        } catch {
            watchedCount.subtract(1, ordering: .relaxed)
            throw error
        }
    }

    /// How many instances are watched.
    var count: Int {
        watchedCount.load(ordering: .relaxed)
    }
}
