import CSpawn
import Dispatch
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
    /// Its cgroup2 cgroup's id (made anew for each process of the instance), when known.
    public let cgroupID: UInt64?
    let pidFD: PidFD
    private let state = Mutex(State())

    private struct State {
        var exit: InstanceExit?
        var exitCallbacks: [@Sendable (InstanceExit) -> Void] = []
        /// Members of the cgroup seen just before a kill, that may end up as our zombies.
        var orphanCandidates: [PidFD] = []
        /// Their pids: a kill retried every second (see `kill`) holds each process once.
        var heldPids: Set<pid_t> = []
    }

    /// Without its own pid namespace a service's orphans are reparented to the supervisor (a
    /// subreaper), which must reap them; with one, the namespace's init does.
    let mayLeaveOrphans: Bool

    /// How long cleanup after an exit may wait for the cgroup to empty and go.
    static let cleanupTimeout = Duration.seconds(5)

    /// For a process that is not our child (adopted after an agent restart), where waitid cannot
    /// reap it: how else to learn its exit status (see `ForeignExit`).
    let foreignTermination: (@Sendable () -> InstanceExit.Termination?)?

    init(instanceID: String, pid: pid_t, pidFD: PidFD, cgroup: InstanceCgroup, cgroupID: UInt64?, mayLeaveOrphans: Bool,
         foreignTermination: (@Sendable () -> InstanceExit.Termination?)? = nil)
    {
        self.cgroupID = cgroupID
        self.mayLeaveOrphans = mayLeaveOrphans
        self.foreignTermination = foreignTermination
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

    /// Kills every process of the instance at once (its whole cgroup). If the cgroup cannot be
    /// killed as a whole, each process it lists is killed instead, and the main process through
    /// its pidfd, which needs no new descriptor and, as a pid-namespace init, takes its whole
    /// namespace with it; then the cgroup's error is thrown.
    public func kill() throws(SystemCallError) {
        if mayLeaveOrphans {
            let held = state.withLock { $0.heldPids }
            let members = holdMembers(except: held)
            state.withLock { state in
                state.orphanCandidates += members.map(\.process)
                state.heldPids.formUnion(members.map(\.pid))
            }
        }
        do {
            try cgroup.kill()
        } catch {
            try? pidFD.send(SIGKILL)
            throw error
        }
    }

    /// Every process now in the cgroup but those of `held`, each held by a pidfd.
    private func holdMembers(except held: Set<pid_t>) -> [(pid: pid_t, process: PidFD)] {
        guard let directory = cgroup.directories.first else { return [] }
        return ((try? InstanceCgroup.processes(in: directory)) ?? []).filter { !held.contains($0) }.compactMap { pid in
            let fd = fl_pidfd_open(pid)
            return fd >= 0 ? (pid, PidFD(descriptor: fd)) : nil
        }
    }

    /// Returns once the main process has exited, whatever was left of the instance has been
    /// killed and its cgroup removed.
    public func wait() async -> InstanceExit {
        await withCheckedContinuation { continuation in whenExited { continuation.resume(returning: $0) } }
    }

    /// Calls `body` with the exit, on the exit watcher's thread (or right away if the instance
    /// has exited already). Unlike `wait()` it needs no task: a supervisor whose Swift
    /// concurrency threads are busy still learns of an exit at once.
    public func whenExited(_ body: @escaping @Sendable (InstanceExit) -> Void) {
        let exit = state.withLock { state -> InstanceExit? in
            if let exit = state.exit { return exit }
            state.exitCallbacks.append(body)
            return nil
        }
        if let exit { body(exit) }
    }

    /// Whether the main process would drop `signal`: it is the init of its own pid namespace and
    /// has no handler for it (see `SignalDisposition`). False when that cannot be read.
    public func discards(_ signal: Int32) -> Bool {
        guard !mayLeaveOrphans, exitStatus == nil, let disposition = SignalDisposition.read(pid) else { return false }
        return disposition.initDiscards(signal)
    }

    /// Asks the instance to stop with `signal`, and kills its whole cgroup if it has not exited
    /// within `timeout`, or at once when the signal would be dropped (`discards`): a pid-namespace
    /// init ignores signals it has no handler for, so such a service only ends by the kill.
    public func stop(signal: Int32 = SIGTERM, timeout: Duration = .seconds(10)) async -> InstanceExit {
        if let exit = exitStatus { return exit }
        if discards(signal) {
            try? kill()
        } else {
            try? self.signal(signal)
            // The kill runs on a Dispatch queue, not in a task: on a loaded node the cooperative
            // pool can be busy for seconds, and a stop must not wait for it. It holds the handle
            // until then and does nothing if the instance has exited.
            DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(Int(timeout.nanosecondsClamped))) { [self] in
                if exitStatus == nil { try? kill() }
            }
        }
        return await wait()
    }


    /// Memory, CPU and pids use of the whole instance.
    public func stats() throws(SystemCallError) -> CgroupStats {
        try cgroup.stats()
    }

    /// Kills whatever is left in the cgroup, reaps orphans, removes the cgroup, and returns the
    /// OOM kill count read before the removal.
    private func emptyAndRemoveCgroup(deadline: ContinuousClock.Instant) throws(SystemCallError) -> UInt64 {
        // With its own pid namespace, the kernel killed every process of the namespace before
        // its init could be reaped: the cgroup is empty unless something was moved into it from
        // outside, which the removal shows (EBUSY). So try the removal first.
        if !mayLeaveOrphans {
            let oomKillCount = try cgroup.oomKillCount()
            if try cgroup.removeIfEmpty(deadline: deadline) { return oomKillCount }
        }
        if try cgroup.isPopulated() {
            // A failed kill has killed each process instead (see `kill`): wait for them all the
            // same, and name its error only if the cgroup does not empty.
            var killError: SystemCallError?
            do { try kill() } catch { killError = error }
            guard try cgroup.waitUntilEmpty(deadline: deadline) else {
                throw killError ?? SystemCallError(call: "wait for empty cgroup", path: cgroup.directories.first, errno: ETIMEDOUT)
            }
        }
        let oomKillCount = try cgroup.oomKillCount()
        if mayLeaveOrphans { reapOrphans(deadline: deadline) }
        try cgroup.remove(deadline: deadline)
        return oomKillCount
    }

    /// Called by the exit watcher when the pidfd turns readable: reaps the main process, kills
    /// what remains in the cgroup (a grandchild never outlives its service), reads the OOM count,
    /// reaps orphans, removes the cgroup, then wakes every waiter.
    func processExited() {
        var termination = (try? pidFD.reap()) ?? nil
        if termination == nil, let foreignTermination { termination = foreignTermination() }
        let deadline = ContinuousClock.now + Self.cleanupTimeout
        var oomKillCount: UInt64 = 0
        var cleanupError: SystemCallError?
        do throws(SystemCallError) {
            oomKillCount = try emptyAndRemoveCgroup(deadline: deadline)
        } catch {
            cleanupError = error
        }
        let exit = InstanceExit(termination: termination ?? .unknown, oomKillCount: oomKillCount,
                              cleanupError: cleanupError)
        let callbacks = state.withLock { state in
            state.exit = exit
            defer { state.exitCallbacks = [] }
            return state.exitCallbacks
        }
        for callback in callbacks { callback(exit) }
    }
}

extension InstanceHandle {
    /// Reaps the instance's processes that were reparented to us: those held before a kill, and
    /// on cgroup2 any zombie child still listed in this instance's cgroup (the kernel keeps a
    /// zombie's cgroup2 membership, not its v1 one), which a kill we did not make may have left.
    fileprivate func reapOrphans(deadline: ContinuousClock.Instant) {
        var candidates = state.withLock { state in
            defer { state.orphanCandidates = [] }
            return state.orphanCandidates
        }
        if let relative = cgroup.unifiedRelativePath {
            for pid in Self.ownChildren() where ProcessCgroups(pid: pid)?.unifiedPath == relative {
                let fd = fl_pidfd_open(pid)
                if fd >= 0 { candidates.append(PidFD(descriptor: fd)) }
            }
        }
        for candidate in candidates {
            candidate.reap(within: max(deadline - ContinuousClock.now, .zero))
        }
    }

    /// Our children, from /proc/self/task/*/children (a child belongs to the thread that forked it).
    static func ownChildren() -> [pid_t] {
        guard let directory = opendir("/proc/self/task") else { return [] }
        defer { closedir(directory) }
        var children: [pid_t] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let tid = Int32(name) else { continue }
            let text = (try? FileIO.readText("/proc/self/task/\(tid)/children")) ?? ""
            children += text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { pid_t($0) }
        }
        return children
    }
}
