import CSpawn
import Glibc
import NIOCore
import NIOPosix
import Testing

@testable import Supervisor

/// An exec check's process reaped by another waiter first (the orphan reaper of an instance
/// without its own pid namespace takes every child in the cgroup): the check ends, status
/// unknown. Left pending, its pidfd stays readable and wakes the watcher's thread for ever.
@Suite(.timeLimit(.minutes(1))) struct ExecCheckReapTests {
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
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        close(pipeEnds[1])
        let watcher = try DescriptorWatcher(name: "exec-check-reap")
        defer { watcher.stop() }
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let promise = loop.makePromise(of: ProbeOutcome.self)
        let run = ExecCheckRun(
            process: PidFD(descriptor: fd), pid: pid, output: pipeEnds[0], command: "/bin/true", timeout: .seconds(5), watcher: watcher,
            promise: promise)
        run.watch()
        let timer = loop.scheduleTask(in: .seconds(5)) { promise.fail(CancellationError()) }
        defer { timer.cancel() }
        let outcome = try await promise.futureResult.get()
        #expect(!outcome.passed && outcome.detail.contains("status unknown"), "\(outcome)")
    }
}
