import CSpawn
import Glibc
import Synchronization

/// A running service instance: a direct child of the supervisor, held by its pidfd, inside its
/// own cgroup. No helper process stands between them (DESIGN.md §3).
public final class InstanceHandle: Sendable {
    /// The instance this is.
    public let instanceID: String
    /// Its pid as the supervisor sees it (informational; everything acts through the pidfd).
    public let pid: pid_t
    /// Its cgroup.
    public let cgroup: InstanceCgroup
    let pidFD: PidFD
    private let state = Mutex(State())

    private struct State {
        var exit: InstanceExit?
        var waiters: [CheckedContinuation<InstanceExit, Never>] = []
    }

    /// How long cleanup after an exit may wait for the cgroup to empty and go.
    static let cleanupTimeout = Duration.seconds(5)

    init(instanceID: String, pid: pid_t, pidFD: PidFD, cgroup: InstanceCgroup) {
        self.instanceID = instanceID
        self.pid = pid
        self.pidFD = pidFD
        self.cgroup = cgroup
    }

    /// The exit status once the instance has ended and its cgroup is gone; nil before.
    public var exitStatus: InstanceExit? {
        state.withLock { $0.exit }
    }

    /// Sends `signal` to the main process (ESRCH once it has exited).
    public func signal(_ signal: Int32) throws(SystemCallError) {
        try pidFD.send(signal)
    }

    /// Kills every process of the instance at once (its whole cgroup).
    public func kill() throws(SystemCallError) {
        try cgroup.kill()
    }

    /// Returns once the main process has exited, whatever was left of the instance has been
    /// killed and its cgroup removed.
    public func wait() async -> InstanceExit {
        await withCheckedContinuation { continuation in
            let exit = state.withLock { state -> InstanceExit? in
                if let exit = state.exit { return exit }
                state.waiters.append(continuation)
                return nil
            }
            if let exit { continuation.resume(returning: exit) }
        }
    }

    /// Asks the instance to stop with `signal`, and kills its whole cgroup if it has not exited
    /// within `timeout`. (A pid-namespace init ignores signals it has no handler for: such a
    /// service only ends by the kill.)
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async -> InstanceExit {
        if let exit = exitStatus { return exit }
        try? self.signal(signal)
        return await withTaskGroup(of: InstanceExit?.self) { group in
            group.addTask { await self.wait() }
            group.addTask {
                try? await Task.sleep(for: timeout)
                if !Task.isCancelled { try? self.cgroup.kill() }
                return nil
            }
            var status: InstanceExit?
            while let next = await group.next() {
                if let next {
                    status = next
                    group.cancelAll()
                }
            }
            return status ?? InstanceExit(termination: .unknown, oomKillCount: 0)
        }
    }

    /// Memory, CPU and pids use of the whole instance.
    public func stats() throws(SystemCallError) -> CgroupStats {
        try cgroup.stats()
    }

    /// Called by the exit watcher when the pidfd turns readable: reaps the main process, kills
    /// what remains in the cgroup (a grandchild never outlives its service), reads the OOM count,
    /// removes the cgroup, then wakes every waiter.
    func processExited() {
        let termination = (try? pidFD.reap()) ?? nil
        let deadline = ContinuousClock.now + Self.cleanupTimeout
        var oomKillCount: UInt64 = 0
        var cleanupError: SystemCallError?
        // Processes left in the cgroup may be orphans reparented to us (we are a subreaper; a
        // service without its own pid namespace can leave some): hold them by pidfd before the
        // kill, reap them after, so no zombie stays behind. Those that are not our children
        // are reaped by their own parent (waitid says ECHILD).
        var leftovers: [PidFD] = []
        do throws(SystemCallError) {
            if try cgroup.isPopulated() {
                if let directory = cgroup.directories.first {
                    leftovers = try InstanceCgroup.processes(in: directory).compactMap { pid in
                        let fd = fl_pidfd_open(pid)
                        return fd >= 0 ? PidFD(descriptor: fd) : nil
                    }
                }
                try cgroup.kill()
                if try !cgroup.waitUntilEmpty(deadline: deadline) {
                    throw SystemCallError(call: "wait for empty cgroup", path: cgroup.directories.first, errno: ETIMEDOUT)
                }
            }
            oomKillCount = try cgroup.oomKillCount()
            try cgroup.remove(deadline: deadline)
        } catch {
            cleanupError = error
        }
        // Killed and out of the cgroup, but maybe not yet a zombie: wait (our children only).
        for leftover in leftovers { _ = try? leftover.reap(blocking: true) }
        let exit = InstanceExit(termination: termination ?? .unknown, oomKillCount: oomKillCount,
                              cleanupError: cleanupError)
        let waiters = state.withLock { state in
            state.exit = exit
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: exit) }
    }
}
