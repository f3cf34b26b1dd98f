import Foundation
import Glibc
import Manifest
import Testing
import TestSupport

@testable import Supervisor

/// Restart policy and stop, end to end on real processes.
@Suite(.dedicatedThread, .enabled(if: isRoot, "needs root: namespaces and cgroups"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct RestartTests {
    @Test func aCrashLoopBacksOffThenFails() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let policy = SupervisionPolicy(restart: RestartPolicy(initialDelay: .milliseconds(100), maxDelay: .milliseconds(400),
                                                                  maxRestarts: 3, window: .seconds(60)))
            let instance = try await test.node.supervise(shellService("echo started; exit 3", rootfs: rootfs, policy: policy))
            let status = try await instance.wait(timeout: .seconds(30)) { $0.isFinished }
            #expect(status.phase == .failed(reason: "exited with status 3 after 3 restarts within 1m"))
            #expect(status.launchCount == 4)
            #expect(status.restartCount == 3)
            let events = instance.events()
            let launches = events.filter { $0.kind == .launched }.map(\.at)
            let exits = events.filter { $0.kind == .exited }.map(\.at)
            #expect(launches.count == 4 && exits.count == 4)
            // Each relaunch follows its exit by the backoff: 100, 200, 400 ms less up to 20 % jitter.
            for (index, base) in [100, 200, 400].enumerated() where index + 1 < launches.count {
                let gap = launches[index + 1] - exits[index]
                #expect(gap >= .milliseconds(base) * 0.8, "restart \(index + 1) came after \(gap)")
                #expect(gap < .milliseconds(base) + .seconds(2), "restart \(index + 1) came after \(gap)")
            }
            #expect(try capturedLines(instance) == Array(repeating: "started", count: 4))
        }
    }

    /// A wait that times out leaves no waiter behind: each was kept, its predicate run at every
    /// change, for the instance's whole life.
    @Test func timedOutWaitsLeaveNoWaiterBehind() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let instance = try await test.node.supervise(shellService("exec sleep 1000", rootfs: rootfs))
            for _ in 0..<20 {
                await #expect(throws: SupervisedInstance.WaitTimeout.self) { try await instance.wait(timeout: .milliseconds(10)) { _ in false } }
            }
            #expect(await eventually(within: .seconds(5)) { instance.pendingWaits == 0 }, "\(instance.pendingWaits) waits left")
        }
    }

    @Test func onFailureCompletesAfterACleanExit() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let policy = SupervisionPolicy(restart: RestartPolicy(policy: .onFailure, initialDelay: .milliseconds(10)))
            let instance = try await test.node.supervise(
                shellService("if [ -e /tmp/second ]; then exit 0; fi; touch /tmp/second; exit 1", rootfs: rootfs, policy: policy))
            let status = try await instance.wait(timeout: .seconds(30)) { $0.isFinished }
            #expect(status.phase == .completed)
            #expect(status.launchCount == 2)
        }
    }

    @Test func stopSignalsThenKillsTheCgroupAfterTheTimeout() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            // pid 1 of its namespace handles SIGTERM but carries on: only the kill ends it. Its
            // child sleeps in the same cgroup and must go too.
            let policy = SupervisionPolicy(stopSignal: SIGTERM, stopTimeout: .milliseconds(500))
            let script = "trap 'echo term' TERM; sleep 1000 & echo up; while true; do wait; done"
            let instance = try await test.node.supervise(shellService(script, rootfs: rootfs, policy: policy))
            #expect(await eventually(within: .seconds(30)) { (try? capturedLines(instance)) == ["up"] })
            let started = ContinuousClock.now
            let status = await instance.stop()
            let took = ContinuousClock.now - started
            #expect(status.phase == .stopped)
            #expect(took >= .milliseconds(500) && took < .seconds(30), "stop took \(took)")
            #expect(try capturedLines(instance) == ["up", "term"])
            #expect(instance.events().contains { $0.kind == .killed && $0.reason.hasPrefix("still running") })
            #expect(status.launchCount == 1)
        }
    }

    /// A pid-namespace init with no handler for the stop signal never sees it (the kernel drops
    /// it): the cgroup is killed at once instead of after the stop timeout.
    @Test func aStopSignalPidOneCannotReceiveKillsAtOnce() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let policy = SupervisionPolicy(stopSignal: SIGTERM, stopTimeout: .seconds(60))
            let instance = try await test.node.supervise(shellService("echo up; exec sleep 1000", rootfs: rootfs, policy: policy))
            #expect(await eventually(within: .seconds(30)) { (try? capturedLines(instance)) == ["up"] })
            // `exec sleep` replaces the shell; wait until pid 1 is sleep (no handlers at all).
            #expect(await eventually(within: .seconds(10)) {
                let pid = await instance.status().pid ?? 0
                return (try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8)) == "sleep\n"
            })
            let started = ContinuousClock.now
            let status = await instance.stop()
            let took = ContinuousClock.now - started
            #expect(status.phase == .stopped)
            #expect(took < .seconds(10), "stop took \(took)")
            #expect(status.lastExit == .signaled(signal: SIGKILL), "\(String(describing: status.lastExit))")
            let killed = instance.events().first { $0.kind == .killed }
            #expect(killed?.reason.hasPrefix("SIGTERM is dropped by the kernel") == true, "\(instance.events())")
        }
    }

    /// A cgroup that refuses its kill (here cgroup.kill on a read-only bind mount; elsewhere an
    /// LSM, or the supervisor out of descriptors) still ends: each process and the main process
    /// are killed instead, and an event names the error. Before, the failure was swallowed and a
    /// pid-namespace init that drops SIGTERM ran on while the stop waited an hour.
    @Test func aRefusedCgroupKillStillEndsThePidNamespace() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let policy = SupervisionPolicy(stopSignal: SIGTERM, stopTimeout: .seconds(60))
            let instance = try await test.node.supervise(shellService("echo up; exec sleep 1000", rootfs: rootfs, policy: policy))
            #expect(await eventually(within: .seconds(30)) { (try? capturedLines(instance)) == ["up"] })
            let status = try await stopWithTheCgroupKillRefused(instance)
            #expect(status.phase == .stopped)
            #expect(status.lastExit == .signaled(signal: SIGKILL), "\(String(describing: status.lastExit))")
        }
    }

    /// Without a pid namespace nothing ends the main process's children with it: each process the
    /// cgroup lists must be killed, the forked one too.
    @Test func aRefusedCgroupKillStillEndsEveryProcessWithoutAPidNamespace() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let policy = SupervisionPolicy(stopSignal: SIGTERM, stopTimeout: .milliseconds(200))
            var service = shellService("trap '' TERM; sleep 1000 & echo $!; wait", rootfs: rootfs, policy: policy)
            service.launch.namespaces.remove(.pid)
            let instance = try await test.node.supervise(service)
            #expect(await eventually(within: .seconds(30)) { (try? capturedLines(instance))?.count == 1 })
            let child = try #require(pid_t(try capturedLines(instance)[0]))
            let status = try await stopWithTheCgroupKillRefused(instance, alsoKillingByHand: child)
            #expect(status.phase == .stopped)
            #expect(Glibc.kill(child, 0) == -1 && errno == ESRCH, "the forked sleep \(child) outlived its service")
            #expect(!instance.events().contains { $0.kind == .exited && $0.reason.contains("cgroup cleanup failed") }, "\(instance.events())")
        }
    }

    /// Stops `instance` with writes to its cgroup.kill refused (EROFS), and expects the event
    /// that names the refusal. Should the stop not end within 10 s, the instance's main process
    /// and `child` are killed by hand, or the teardown's stop would wait on them for an hour.
    private func stopWithTheCgroupKillRefused(_ instance: SupervisedInstance, alsoKillingByHand child: pid_t? = nil)
        async throws -> InstanceStatus
    {
        let cgroup = instance.context.cgroup(of: instance.instanceID)
        let unified = try #require(cgroup.unifiedPath, "needs cgroup2")
        try #require(cgroup.features.kill, "needs cgroup.kill (Linux 5.14)")
        let refusing = try ReadOnlyBindMount(over: unified + "/cgroup.kill")
        defer { refusing.remove() }
        instance.requestStop()
        let status: InstanceStatus
        do {
            status = try await instance.wait(timeout: .seconds(10)) { $0.isFinished }
        } catch {
            for pid in [await instance.status().pid, child].compactMap({ $0 }) { kill(pid, SIGKILL) }
            throw error
        }
        let failed = instance.events().first { $0.kind == .killFailed }
        #expect(failed?.reason.contains("cgroup.kill\": Read-only file system; each process was sent SIGKILL") == true,
                "\(instance.events())")
        return status
    }

    @Test func stoppingACrashLoopCancelsThePendingRestart() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let policy = SupervisionPolicy(restart: RestartPolicy(initialDelay: .seconds(2), maxDelay: .seconds(2)))
            let instance = try await test.node.supervise(shellService("exit 1", rootfs: rootfs, policy: policy))
            // The stop is queued from the instance's loop as it enters the backoff, so that it
            // lands inside the 2 s backoff however late this task resumes on a loaded machine.
            _ = try await instance.wait(timeout: .seconds(30)) {
                guard case .backingOff = $0.phase else { return false }
                instance.requestStop()
                return true
            }
            let status = await instance.stop()
            #expect(status.phase == .stopped)
            try await Task.sleep(for: .seconds(3))
            let later = await instance.status()
            #expect(later.phase == .stopped)
            #expect(later.launchCount == 1)
            #expect(instance.events().map(\.kind).suffix(3) == [.stopRequested, .restartCancelled, .stopped], "\(instance.events())")
        }
    }
}

/// A read-only bind mount of an empty file over `target`, so that writes to it fail with EROFS.
/// It is held by a descriptor of the mounted file and unmounted through it: removing the cgroup directory it
/// is in leaves the mount in the table, no longer reachable by its path.
final class ReadOnlyBindMount {
    private let source: String
    private var handle: Int32 = -1

    init(over target: String) throws {
        source = NSTemporaryDirectory() + "flotilla-ro-" + UUID().uuidString
        guard FileManager.default.createFile(atPath: source, contents: Data()) else {
            throw SystemCallError(call: "create", path: source, errno: EIO)
        }
        guard mount(source, target, nil, UInt(MS_BIND), nil) == 0 else {
            let error = SystemCallError.last("mount", target)
            unlink(source)
            throw error
        }
        handle = open(target, O_RDONLY | O_CLOEXEC)
        guard handle >= 0, mount(nil, target, nil, UInt(MS_REMOUNT | MS_BIND | MS_RDONLY), nil) == 0 else {
            let error = SystemCallError.last("remount read-only", target)
            remove()
            if handle < 0 { umount2(target, Int32(MNT_DETACH)) }
            throw error
        }
    }

    func remove() {
        if handle >= 0 {
            umount2("/proc/self/fd/\(handle)", Int32(MNT_DETACH))
            close(handle)
            handle = -1
        }
        unlink(source)
    }
}
