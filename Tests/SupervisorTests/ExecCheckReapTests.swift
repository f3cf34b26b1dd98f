import CSpawn
import Glibc
import NIOCore
import NIOPosix
import Testing
import TestSupport

@testable import Supervisor

/// An exec check's process reaped by another waiter first (the orphan reaper of an instance
/// without its own pid namespace takes every child in the cgroup): the check ends, status
/// unknown. Left pending, its pidfd stays readable and wakes the watcher's thread for ever.
/// Serialized: `endOrphanedCommands` ends every orphaned command of this process's cgroup, the
/// other tests' too.
@Suite(.dedicatedThread, .serialized, .timeLimit(.minutes(10))) struct ExecCheckReapTests {
    @Test func aCheckWhoseProcessSomeoneElseReapedEnds() async throws {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("/bin/true"), nil]
        defer { for argument in argv { free(argument) } }
        #expect(posix_spawn(&pid, "/bin/true", nil, nil, argv, environ) == 0)
        let fd = fl_pidfd_open(pid)
        try #require(fd >= 0)
        // Reaped here first, as the orphan reaper would.
        var info = siginfo_t()
        #expect(fl_waitid_pidfd(fd, &info, WEXITED) == 0)
        let outcome = try await Self.outcome(ofACheckWhoseWaitingProcess: fd, pid: pid, cgroup: "/flotilla/none") {}
        #expect(!outcome.passed && outcome.detail.contains("status unknown"), "\(outcome)")
    }

    /// A check's command whose waiting process died before the command was found (a stop's
    /// cgroup kill landing between the launch and the lookup) came to the supervisor, a
    /// subreaper; inside the service's pid namespace it kept that namespace's init from ever
    /// finishing its exit, so the stop waited for ever. `endOrphanedCommands` ends and reaps it,
    /// and nothing else: not the namespace's init, not a process of the supervisor's own namespace,
    /// not an orphan in another cgroup than the instance's.
    /// Run two ways: by the function itself, and by a check whose waiting process is killed
    /// before its command was known (the path `ExecCheckRun.exited` takes).
    @Test(.enabled(if: isRoot && cgroup2Freezes, "needs root (a pid namespace) and cgroup2"), arguments: [false, true])
    func anOrphanedCommandInsideAPidNamespaceIsEndedAndReaped(throughAnEndedCheck: Bool) async throws {
        #expect(fl_set_child_subreaper() == 0)
        // A pid namespace whose init is `sleep`, as a service's is its main process.
        let holder = try Self.spawn(["/usr/bin/unshare", "--pid", "--fork", "/bin/sleep", "1000"])
        guard let namespaceInit = Self.child(of: holder) else {
            kill(holder, SIGKILL)
            waitpid(holder, nil, 0)
            Issue.record("unshare started no init")
            return
        }
        var orphan: pid_t?
        defer {
            // The init's end takes the whole namespace with it; whatever of it became ours is
            // reaped, the orphan first: the init's exit waits for it.
            kill(namespaceInit, SIGKILL)
            kill(holder, SIGKILL)
            if let orphan { waitpid(orphan, nil, 0) }
            waitpid(holder, nil, 0)
            waitpid(namespaceInit, nil, 0)
        }
        // What this process starts is in its cgroup.
        let ownCgroup = try #require(ProcessCgroups(pid: getpid())?.unifiedPath, "needs cgroup2")
        // A command entered into it from outside (as by a check's waiting process), whose
        // entering process is then killed: the command is orphaned to us.
        let entering = try Self.spawn(["/usr/bin/nsenter", "-t", "\(namespaceInit)", "-p", "/bin/sleep", "1000"])
        let entered = Self.child(of: entering)
        if throughAnEndedCheck, let entered {
            orphan = entered
            let fd = fl_pidfd_open(entering)
            try #require(fd >= 0)
            let outcome = try await Self.outcome(ofACheckWhoseWaitingProcess: fd, pid: entering, cgroup: ownCgroup) {
                kill(entering, SIGKILL)
            }
            #expect(outcome.detail.contains("killed by signal 9"), "\(outcome)")
        } else {
            kill(entering, SIGKILL)
            waitpid(entering, nil, 0)
            let command = try #require(entered, "nsenter started no command")
            orphan = command
            var adopted = false
            for _ in 0..<200 where !adopted {
                adopted = InstanceHandle.ownChildren().contains(command)
                if !adopted { usleep(10_000) }
            }
            try #require(adopted, "the orphaned command \(command) never came to this process")
            let watcher = try DescriptorWatcher(name: "exec-check-test")
            defer { watcher.stop() }
            ExecCheckRun.endOrphanedCommands(inCgroup: ownCgroup + "/not-this-one", watcher: watcher)
            #expect(kill(command, 0) == 0, "an orphan of another cgroup was ended")
            ExecCheckRun.endOrphanedCommands(inCgroup: ownCgroup, watcher: watcher)
        }
        let command = try #require(entered, "nsenter started no command")
        let gone = kill(command, 0) != 0 && errno == ESRCH
        #expect(gone, "the orphaned command \(command) is still there")
        if gone { orphan = nil }  // Reaped: its pid may be another's by now.
        #expect(kill(namespaceInit, 0) == 0, "the namespace's init was ended too")
        #expect(kill(holder, 0) == 0, "a process of this namespace was ended too")
    }

    /// A killed command that ends only after the wait for it is over (here: writing to a frozen
    /// filesystem, uninterruptible until the thaw) is still reaped when it ends. Before, it was
    /// waited for 1 s and dropped: a zombie child of the supervisor inside the service's pid
    /// namespace, whose init could then never finish exiting.
    @Test(.enabled(if: isRoot && cgroup2Freezes, "needs root (a pid namespace, a loop mount) and cgroup2"))
    func aCommandThatEndsAfterTheWaitForItIsReapedWhenItEnds() async throws {
        #expect(fl_set_child_subreaper() == 0)
        let frozen = try FrozenFilesystem()
        defer { frozen.remove() }
        let holder = try Self.spawn(["/usr/bin/unshare", "--pid", "--fork", "/bin/sleep", "1000"])
        let namespaceInit = Self.child(of: holder)
        var entering: pid_t?
        var command: pid_t?
        var reaped = false
        defer {
            frozen.thaw()
            for pid in [namespaceInit, holder, entering, command].compactMap({ $0 }) { kill(pid, SIGKILL) }
            // The command is ours only once its parent is gone: that one first.
            for pid in [entering, command, holder, namespaceInit].compactMap({ $0 }) where pid != command || !reaped {
                waitpid(pid, nil, 0)
            }
        }
        // Blocks at once in the frozen filesystem's write barrier (state D), which no signal ends.
        entering = try Self.spawn(["/usr/bin/nsenter", "-t", "\(namespaceInit ?? 0)", "-p", "/usr/bin/touch",
                                   frozen.mountPoint + "/file"])
        command = entering.flatMap(Self.child(of:))
        let ownCgroup = try #require(ProcessCgroups(pid: getpid())?.unifiedPath, "needs cgroup2")
        let orphan = try #require(command, "nsenter started no command")
        try #require(namespaceInit != nil, "unshare started no init")
        // Blocked before its parent goes: killed earlier, it ends at once and tests nothing.
        #expect(await eventually(within: .seconds(5)) { Self.state(of: orphan).hasPrefix("State:\tD") },
                Comment(rawValue: Self.state(of: orphan)))
        let parent = try #require(entering)
        kill(parent, SIGKILL)
        waitpid(parent, nil, 0)
        entering = nil
        #expect(await eventually(within: .seconds(2)) { InstanceHandle.ownChildren().contains(orphan) },
                "the orphaned command \(orphan) never came to this process")
        let watcher = try DescriptorWatcher(name: "exec-check-test")
        defer { watcher.stop() }
        ExecCheckRun.endOrphanedCommands(inCgroup: ownCgroup, watcher: watcher)
        // Past the old 1 s wait: killed, not yet ended.
        try await Task.sleep(for: .milliseconds(1200))
        #expect(Self.state(of: orphan).hasPrefix("State:\tD"), Comment(rawValue: Self.state(of: orphan)))
        frozen.thaw()
        reaped = await eventually(within: .seconds(5)) { kill(orphan, 0) != 0 && errno == ESRCH }
        #expect(reaped, "the command \(orphan) ended after the thaw and was left: \(Self.state(of: orphan))")
    }

    /// The State line of /proc/PID/status ("Z (zombie)").
    static func state(of pid: pid_t) -> String {
        let status = (try? FileIO.readText("/proc/\(pid)/status")) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("State:") }.map(String.init) ?? "gone"
    }

    /// The outcome of a check whose waiting process is `fd` (`pid`), its command unknown (as
    /// when it was gone before the lookup), once watched and `then` has run; at most 5 s.
    static func outcome(
        ofACheckWhoseWaitingProcess fd: Int32, pid: pid_t, cgroup: String, then: () -> Void
    ) async throws -> ProbeOutcome {
        let output = try ExecCheckOutput()
        output.closeWriteEnd()
        let watcher = try DescriptorWatcher(name: "exec-check-test")
        defer { watcher.stop() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = loop.makePromise(of: ProbeOutcome.self)
        let run = ExecCheckRun(
            process: PidFD(descriptor: fd), pid: pid, commandProcess: nil, cgroup: cgroup, output: output,
            command: "/bin/true", timeout: .seconds(5), watcher: watcher, promise: promise)
        run.watch()
        then()
        let timer = loop.scheduleTask(in: .seconds(5)) { promise.fail(CancellationError()) }
        defer { timer.cancel() }
        return try await promise.futureResult.get()
    }

    static func spawn(_ arguments: [String]) throws -> pid_t {
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        try #require(posix_spawn(&pid, arguments[0], nil, nil, argv, environ) == 0, "could not start \(arguments[0])")
        return pid
    }

    /// The first child of `pid`, waited for up to 2 s.
    static func child(of pid: pid_t) -> pid_t? {
        for _ in 0..<200 {
            let text = (try? FileIO.readText("/proc/\(pid)/task/\(pid)/children")) ?? ""
            if let child = text.split(separator: " ").compactMap({ pid_t($0.trimmingCharacters(in: ["\n"])) }).first { return child }
            usleep(10_000)
        }
        return nil
    }
}

/// A small ext4 filesystem on a loop device, frozen (fsfreeze): a write to it blocks,
/// uninterruptibly, until `thaw`.
struct FrozenFilesystem {
    let mountPoint: String
    private let image: String

    init() throws {
        let base = "/tmp/flotilla-frozen-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        image = base + ".img"
        mountPoint = base
        guard mkdir(mountPoint, 0o755) == 0 else { throw SystemCallError.last("mkdir", mountPoint) }
        do {
            try Self.run(["/usr/bin/truncate", "-s", "16M", image])
            try Self.run(["/sbin/mkfs.ext4", "-q", "-F", image])
            try Self.run(["/bin/mount", "-o", "loop", image, mountPoint])
            try Self.run(["/sbin/fsfreeze", "-f", mountPoint])
        } catch {
            remove()
            throw error
        }
    }

    func thaw() {
        try? Self.run(["/sbin/fsfreeze", "-u", mountPoint], quietly: true)
    }

    /// Thaws, unmounts (lazily, should a process still use it; the loop device goes with the
    /// mount: mount -o loop sets autoclear) and deletes.
    func remove() {
        thaw()
        umount2(mountPoint, Int32(MNT_DETACH))
        rmdir(mountPoint)
        unlink(image)
    }

    private static func run(_ arguments: [String], quietly: Bool = false) throws {
        var pid: pid_t = 0
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if quietly { posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0) }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw SystemCallError(call: "posix_spawn", path: arguments[0], errno: spawned) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        guard status == 0 else { throw SystemCallError(call: arguments.joined(separator: " "), errno: EIO) }
    }
}
