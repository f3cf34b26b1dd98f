import CSpawn
import Glibc
import NIOCore
import Synchronization

/// Exec checks: the command runs inside the instance's namespaces and cgroup, as its user, with
/// its capabilities, no_new_privs and seccomp filter (what `docker exec` gives), started by
/// `fl_spawn` in join mode: a child enters the namespaces with setns(2) on the service's pidfd and
/// forks the command into the joined pid namespace (C between clone and exec, DESIGN.md §2).
/// Its output goes to a memory file, of which the first 4 KiB end up in the outcome.
enum ExecProbe {
    /// How much of the command's output an outcome quotes.
    static let outputBytes = 4096

    static func run(_ command: [String], like service: LaunchSpec, in instance: InstanceHandle, supervisor: Supervisor,
                    watcher: DescriptorWatcher, loop: EventLoop, timeout: Duration) -> EventLoopFuture<ProbeOutcome>
    {
        let promise = loop.makePromise(of: ProbeOutcome.self)
        let output = fl_memfd("flotilla-exec-check")
        guard output >= 0 else {
            promise.succeed(ProbeOutcome(passed: false, detail: "\(SystemCallError.last("memfd_create"))"))
            return promise.futureResult
        }
        var spec = service
        spec.command = command
        spec.standardOutput = .fileDescriptor(output)
        spec.standardError = .fileDescriptor(output)
        spec.startTimeout = timeout
        let started: (pid: pid_t, pidFD: Int32)
        do {
            started = try supervisor.launchJoined(spec, into: instance)
        } catch {
            close(output)
            promise.succeed(ProbeOutcome(passed: false, detail: "could not run \(command[0]): \(error)"))
            return promise.futureResult
        }
        let process = PidFD(descriptor: started.pidFD)
        let finished = Atomic<Bool>(false)
        let token = Mutex<UInt64?>(nil)
        let complete: @Sendable (ProbeOutcome) -> Void = { outcome in
            guard !finished.exchange(true, ordering: .acquiringAndReleasing) else { return }
            if let token = token.withLock({ $0 }) { watcher.remove(process.descriptor, token: token) }
            promise.succeed(outcome)
        }
        let timer = loop.scheduleTask(in: .nanoseconds(timeout.nanosecondsClamped)) {
            // The child dies by SIGKILL; the command follows through PR_SET_PDEATHSIG.
            try? process.send(SIGKILL)
        }
        do {
            let added = try watcher.add(process.descriptor) { _ in
                guard let termination = try? process.reap() else { return }
                let text = Self.readOutput(output)
                close(output)
                let passed = termination == .exited(code: 0)
                var detail: String
                switch termination {
                case .exited(let code) where code > 128 && code < 160:
                    detail = "\(command[0]) killed by signal \(code - 128)"
                case .exited(let code): detail = "\(command[0]) exited with status \(code)"
                case .signaled(let signal, _):
                    detail = signal == SIGKILL ? "\(command[0]) timed out after \(timeout)" : "\(command[0]) killed by signal \(signal)"
                case .unknown: detail = "\(command[0]) ended, status unknown"
                }
                if !text.isEmpty { detail += ": " + text }
                complete(ProbeOutcome(passed: passed, detail: detail))
            }
            token.withLock { $0 = added }
            // Finished before the token was known: complete could not unregister it.
            if finished.load(ordering: .acquiring) { watcher.remove(process.descriptor, token: added) }
        } catch {
            try? process.send(SIGKILL)
            _ = try? process.reap(blocking: true)
            close(output)
            complete(ProbeOutcome(passed: false, detail: "\(error)"))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    private static func readOutput(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: outputBytes)
        let n = buffer.withUnsafeMutableBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            return pread(fd, base, raw.count, 0)
        }
        guard n > 0 else { return "" }
        var text = String(decoding: buffer[0..<n], as: UTF8.self)
        while text.last == "\n" { text.removeLast() }
        return text
    }
}

extension Supervisor {
    /// Starts `spec.command` inside `instance`: its namespaces (as the instance's spec lists
    /// them, plus its mount namespace) and its cgroup, with `spec`'s identity and restrictions.
    /// Returns once the command has called execve; the pid and pidfd are of the joining child,
    /// which exits with the command's status (128 + signal when a signal ended it).
    func launchJoined(_ spec: LaunchSpec, into instance: InstanceHandle) throws(SpawnError) -> (pid: pid_t, pidFD: Int32) {
        let prepared = try launcher.prepare(spec)
        let descriptors: SpawnCgroupDescriptors
        do {
            descriptors = try instance.cgroup.openForSpawn()
        } catch {
            throw SpawnError.cgroup(error)
        }
        defer { descriptors.close() }
        let procsPaths = Set(instance.cgroup.legacyPaths.values).sorted().map { $0 + "/cgroup.procs" }
        return try launcher.spawn(prepared, cgroup: descriptors, cgroupProcsPaths: procsPaths,
                                  join: (instance.pidFD.descriptor, spec.namespaces))
    }
}
