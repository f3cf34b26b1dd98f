import CSpawn
import Dispatch
import Glibc
import Manifest
import NIOCore
import NIOPosix
import Synchronization

/// Exec checks: the command runs inside the instance's namespaces and cgroup, as its user, with
/// its capabilities, no_new_privs and seccomp filter (what `docker exec` gives), started by
/// `fl_spawn` in join mode: a child enters the namespaces with setns(2) on the service's pidfd and
/// forks the command into the joined pid namespace (C between clone and exec, DESIGN.md §2).
/// Its output goes to a pipe the supervisor drains (`ExecCheckOutput`); the first 4 KiB end up
/// in the outcome.
enum ExecProbe {
    /// How much of the command's output an outcome quotes.
    static let outputBytes = 4096

    /// Runs `command` as a check of `instance`. The launch runs on `launches`, not on `loop`: it
    /// returns only once the command has called execve, which takes up to `timeout` when that
    /// does not come (the instance's cgroup frozen, a slow filesystem), and on the node's loop
    /// that wait held up every instance's timers and state changes.
    static func run(_ command: [String], like service: LaunchSpec, in instance: InstanceHandle, supervisor: Supervisor,
                    watcher: DescriptorWatcher, launches: NIOThreadPool, loop: EventLoop, timeout: Duration)
        -> EventLoopFuture<ProbeOutcome>
    {
        // The timeout counts from here: a launch that waits (up to `timeout` itself) is part of
        // the check's time, or a check could take twice its timeout.
        let deadline = NIODeadline.now() + .nanoseconds(timeout.nanosecondsClamped)
        let cgroup = instance.cgroup.unifiedRelativePath
        let output: ExecCheckOutput
        do {
            output = try ExecCheckOutput()
        } catch {
            return loop.makeSucceededFuture(ProbeOutcome(passed: false, detail: "could not run \(command[0]): \(error)"))
        }
        var spec = service
        spec.command = command
        spec.standardOutput = .fileDescriptor(output.writeEnd)
        spec.standardError = .fileDescriptor(output.writeEnd)
        spec.startTimeout = timeout
        let launched = launches.runIfActive(eventLoop: loop) { [spec] in
            let started: (pid: pid_t, pidFD: Int32)
            do {
                started = try supervisor.launchJoined(spec, into: instance)
            } catch {
                // A launch that timed out after the fork killed only the waiting process: its
                // command, stuck before execve (a frozen cgroup), is ours now.
                ExecCheckRun.endOrphanedCommands(inCgroup: cgroup, watcher: watcher)
                throw error
            }
            // The command (which has called execve) is found at once, on this thread: the longer
            // until then, the likelier a stop's cgroup kill has taken its waiting process first.
            return (started, ExecCheckRun.onlyChild(of: started.pid))
        }
        let promise = loop.makePromise(of: ProbeOutcome.self)
        launched.whenComplete { result in
            // The command holds its own copies now (or was never started): the pipe reaches
            // end-of-file once it, and whatever it started with the pipe as output, have gone.
            output.closeWriteEnd()
            switch result {
            case .success(let (started, commandProcess)):
                let run = ExecCheckRun(process: PidFD(descriptor: started.pidFD), pid: started.pid, commandProcess: commandProcess,
                                       cgroup: cgroup, output: output, command: command[0], timeout: timeout,
                                       watcher: watcher, promise: promise)
                let timer = loop.scheduleTask(deadline: deadline) { run.timeOut() }
                run.watch()
                promise.futureResult.whenComplete { _ in timer.cancel() }
            case .failure(let error):
                // Nothing was started (or the pool had stopped): the pipe is ours to close.
                output.close(watcher)
                let reason = error is NIOThreadPoolError.ThreadPoolInactive ? "the supervisor is shutting down" : "\(error)"
                promise.succeed(ProbeOutcome(passed: false, detail: "could not run \(command[0]): \(reason)"))
            }
        }
        return promise.futureResult
    }
}

extension Supervisor {
    /// Starts `spec.command` inside `instance`: its namespaces (as the instance's spec lists
    /// them, plus its mount namespace) and its cgroup, with `spec`'s identity and restrictions.
    /// Returns once the command has called execve; the pid and pidfd are of the joining child,
    /// which exits with the command's status (128 + signal when a signal ended it).
    func launchJoined(_ spec: LaunchSpec, into instance: InstanceHandle) throws(SpawnError) -> (pid: pid_t, pidFD: Int32) {
        let prepared = try launcher.prepare(spec)
        let directory: Int32
        do {
            directory = try instance.cgroup.openUnifiedDirectory()
        } catch {
            throw SpawnError.cgroup(error)
        }
        defer { if directory >= 0 { close(directory) } }
        return try launcher.spawn(prepared, cgroup: instance.cgroup, cgroupDirectory: directory,
                                  join: (instance.pidFD.descriptor, spec.namespaces)) { () throws(SpawnError) -> [Int32] in
            do throws(SystemCallError) {
                return try instance.cgroup.openLegacyTasks()
            } catch {
                throw SpawnError.cgroup(error)
            }
        }
    }
}

/// One exec check in flight: the joining child (`process`), its output pipe, and the command
/// itself (the child's only child, held by a pidfd from the start). On a timeout the command is
/// killed first, so that the child reaps it. When the child dies first anyway (the instance's
/// cgroup killed by a stop while the check runs), the command is reparented to the supervisor
/// (a subreaper) as a zombie inside the service's pid namespace, and that namespace's init
/// cannot finish exiting until someone reaps it: the stop would wait for ever. So the command is
/// reaped here too once the child has ended.
final class ExecCheckRun: Sendable {
    let process: PidFD
    let pid: pid_t
    let output: ExecCheckOutput
    let command: String
    let timeout: Duration
    let watcher: DescriptorWatcher
    let promise: EventLoopPromise<ProbeOutcome>
    private let finished = Atomic<Bool>(false)
    private let timedOut = Atomic<Bool>(false)
    private let token = Mutex<UInt64?>(nil)
    /// The command, found as `process`'s child once it had called execve; nil when it was gone
    /// by then.
    private let grandchild: PidFD?
    /// The instance's cgroup2 path below the root: where an orphaned command is looked for.
    let cgroup: String?

    init(process: PidFD, pid: pid_t, commandProcess: PidFD?, cgroup: String?, output: ExecCheckOutput, command: String,
         timeout: Duration, watcher: DescriptorWatcher, promise: EventLoopPromise<ProbeOutcome>)
    {
        self.process = process
        self.pid = pid
        self.grandchild = commandProcess
        self.cgroup = cgroup
        self.output = output
        self.command = command
        self.timeout = timeout
        self.watcher = watcher
        self.promise = promise
    }

    func watch() {
        do {
            try output.watch(on: watcher)
            let added = try watcher.add(process.descriptor) { [self] _ in exited() }
            token.withLock { $0 = added }
            // Finished before the token was known: `complete` could not unregister it.
            if finished.load(ordering: .acquiring) { watcher.remove(process.descriptor, token: added) }
        } catch {
            timeOut()
            _ = try? process.reap(blocking: true)
            output.close(watcher)
            complete(ProbeOutcome(passed: false, detail: "\(error)"))
        }
    }

    /// The timeout: SIGKILL to the command, else (it is gone already) to the child.
    func timeOut() {
        timedOut.store(true, ordering: .releasing)
        let killed = grandchild.map { (try? $0.send(SIGKILL)) != nil } ?? false
        if !killed { try? process.send(SIGKILL) }
    }

    /// Ends and reaps every child of the supervisor in the instance's cgroup (its cgroup2 path, as
    /// `InstanceHandle.reapOrphans` finds orphans: a zombie keeps its cgroup2 membership, not its
    /// v1 one; without cgroup2 nothing is found) and inside a pid namespace deeper than the
    /// supervisor's that it is not the init of: a check's command
    /// orphaned by its waiting process. An instance's own processes are the init of their
    /// namespace or its descendants, whose orphans go to that init; the processes of an instance
    /// without a pid namespace of its own share the supervisor's. Each is held by a pidfd before
    /// it is checked, so that a pid reaped and reused meanwhile is not signalled.
    static func endOrphanedCommands(inCgroup cgroup: String?, watcher: DescriptorWatcher) {
        // Counted from the supervisor's own depth: it may itself run in a pid namespace.
        let ownDepth = namespacePids(of: "self").count
        guard let cgroup, ownDepth > 0 else { return }
        for pid in InstanceHandle.ownChildren() {
            let fd = fl_pidfd_open(pid)
            guard fd >= 0 else { continue }
            let process = PidFD(descriptor: fd)
            let namespacePids = namespacePids(of: "\(pid)")
            guard namespacePids.count > ownDepth, namespacePids.last != "1", ProcessCgroups(pid: pid)?.unifiedPath == cgroup,
                  InstanceHandle.ownChildren().contains(pid), !awaitingReap.withLock({ $0.contains(pid) })
            else { continue }
            try? process.send(SIGKILL)
            reapOnceEnded(process, pid: pid, watcher: watcher)
        }
    }

    /// How long a killed command is waited for on the calling thread (the watcher's, or a launch
    /// thread) before its reap is left to the watcher. A SIGKILL ends a process within
    /// microseconds, unless it is in a frozen v1 cgroup (killed only once thawed) or in
    /// uninterruptible sleep.
    static let reapPatience = Duration.milliseconds(100)

    /// Reaps `process`, just sent SIGKILL, once it has ended: at once if it ends within
    /// `reapPatience`, else when its pidfd turns readable, on `watcher`'s thread. Given up after a
    /// fixed wait, a command that ended later was a zombie nobody waited for, and inside the
    /// service's pid namespace it kept that namespace's init from finishing its exit: the next
    /// stop of the instance waited for ever.
    static func reapOnceEnded(_ process: PidFD, pid: pid_t?, watcher: DescriptorWatcher) {
        var descriptor = pollfd(fd: process.descriptor, events: Int16(POLLIN), revents: 0)
        if poll(&descriptor, 1, Int32(reapPatience / .milliseconds(1))) == 1 {
            _ = try? process.reap()
            return
        }
        // Left for later: `endOrphanedCommands` skips it meanwhile, or each of its calls would
        // wait for it again and watch it once more. Its pid cannot be reused before the reap.
        if let pid { awaitingReap.withLock { _ = $0.insert(pid) } }
        let reap: @Sendable () -> Void = {
            _ = try? process.reap(blocking: true)
            if let pid { awaitingReap.withLock { _ = $0.remove(pid) } }
        }
        do {
            // The handler holds `process`, and so its descriptor, until it has run.
            try watcher.addOneShot(process.descriptor) { _ in reap() }
        } catch {
            // epoll refused (ENOMEM, max_user_watches) or the watcher is stopping: a thread of
            // Dispatch's waits instead, as long as it takes, rather than the watcher's.
            DispatchQueue.global().async { reap() }
        }
    }

    /// The pids of killed commands whose reap was left to the watcher.
    static let awaitingReap = Mutex<Set<pid_t>>([])

    /// A process's pid in each pid namespace it is in, outermost first (`NSpid:` of its status).
    private static func namespacePids(of process: String) -> [Substring] {
        let status = (try? FileIO.readText("/proc/\(process)/status")) ?? ""
        guard let line = status.split(separator: "\n").first(where: { $0.hasPrefix("NSpid:") }) else { return [] }
        return line.dropFirst(6).split(whereSeparator: { $0 == " " || $0 == "\t" })
    }

    /// The process's one child, held by a pidfd; nil when it has none (or it is gone).
    static func onlyChild(of pid: pid_t) -> PidFD? {
        func children() -> [pid_t] {
            ((try? FileIO.readText("/proc/\(pid)/task/\(pid)/children")) ?? "")
                .split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: ["\n"])) }
        }
        guard let child = children().first else { return nil }
        let fd = fl_pidfd_open(child)
        guard fd >= 0 else { return nil }
        // Still listed after the open: the pidfd is that child, not a process given its number
        // after it was reaped (the child forks once, so nothing else can take its place there).
        guard children().contains(child) else {
            close(fd)
            return nil
        }
        return PidFD(descriptor: fd)
    }

    private func exited() {
        // Ended already: the pidfd stays readable after the reap, and level-triggered epoll
        // calls again until `watch` has the token to remove it (a second pass would reap
        // again, finding no status, and kill and reap the command again).
        guard !finished.load(ordering: .acquiring) else { return }
        let termination: InstanceExit.Termination
        do {
            // nil: a wake-up before the exit.
            guard let ended = try process.reap() else { return }
            termination = ended
        } catch {
            // ECHILD: reaped by another waiter (the cgroup's orphan reaper of an instance
            // without its own pid namespace). It ended, status unknown; left pending, its
            // pidfd would stay readable and wake the watcher's thread for ever.
            termination = .unknown
        }
        // If the child died before the command, the command came to us: end it and reap it. Its
        // PR_SET_PDEATHSIG does not: taking the service's user clears it (credentials change),
        // so a command of a non-root service outlives a killed child. A command the child
        // reaped is gone and not our child: the signal fails and the reap returns at once.
        if let command = grandchild {
            try? command.send(SIGKILL)
            Self.reapOnceEnded(command, pid: nil, watcher: watcher)
        } else if case .signaled = termination {
            // Killed before the command was found: the launch runs on another thread than the
            // stop's cgroup kill, which can land between the command's execve and the lookup.
            Self.endOrphanedCommands(inCgroup: cgroup, watcher: watcher)
        }
        let text = output.finish(watcher)
        var detail: String
        if timedOut.load(ordering: .acquiring) {
            detail = "\(command) timed out after \(DurationText.formatRounded(timeout))"
        } else {
            switch termination {
            case .exited(let code) where code > 128 && code < 160: detail = "\(command) killed by signal \(code - 128)"
            case .exited(let code): detail = "\(command) exited with status \(code)"
            case .signaled(let signal, _): detail = "\(command) killed by signal \(signal)"
            case .unknown: detail = "\(command) ended, status unknown"
            }
        }
        if !text.isEmpty { detail += ": " + text }
        complete(ProbeOutcome(passed: termination == .exited(code: 0) && !timedOut.load(ordering: .acquiring), detail: detail))
    }

    private func complete(_ outcome: ProbeOutcome) {
        guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let token = token.withLock({ $0 }) { watcher.remove(process.descriptor, token: token) }
        promise.succeed(outcome)
    }
}
