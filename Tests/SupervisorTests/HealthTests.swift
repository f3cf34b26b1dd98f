import Foundation
import Glibc
import Manifest
import Testing
import TestSupport

@testable import Supervisor

/// Health checks on real services: HTTP status, TCP connect, a command inside the namespaces.
@Suite(.dedicatedThread, .enabled(if: isRoot, "needs root: namespaces and cgroups"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct HealthTests {
    /// busybox httpd serving `www/` of the rootfs on `port`.
    static func webServer(_ rootfs: BusyboxRootfs, port: Int, check: HealthCheck, readiness: ReadinessMode = .health,
                          restart: RestartPolicy = RestartPolicy(initialDelay: .milliseconds(50)), id: String = #function)
        throws -> SupervisedService
    {
        try FileManager.default.createDirectory(atPath: rootfs.path + "/www", withIntermediateDirectories: true)
        let policy = SupervisionPolicy(restart: restart, health: check, readiness: readiness, stopTimeout: .milliseconds(500))
        return shellService("exec httpd -f -p 127.0.0.1:\(port) -h /www", rootfs: rootfs, id: id, policy: policy,
                            ports: ["http": port])
    }

    @Test func httpFlappingFollowsTheThresholdsAndAnUnhealthyInstanceIsRestarted() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        let marker = rootfs.path + "/www/health.txt"
        try await withTestNode { test in
            let check = HealthCheck(probe: .http(HTTPCheck(port: "http", path: "/health.txt")), interval: .milliseconds(150),
                                    timeout: .seconds(1), healthyThreshold: 2, unhealthyThreshold: 3)
            let service = try Self.webServer(rootfs, port: port, check: check)
            try "ok".write(toFile: marker, atomically: true, encoding: .utf8)
            let instance = try await test.node.supervise(service)
            var status = try await instance.wait(timeout: .seconds(30)) { $0.isReady }
            #expect(status.health == .healthy)
            #expect(status.lastCheck == ProbeOutcome(passed: true, detail: "HTTP 200"))
            #expect(status.launchCount == 1)
            // Two failures are below the threshold of three: still healthy, not restarted. The
            // marker comes back from inside the predicate, which runs on the instance's loop as
            // the second failure is recorded, so the third check (an interval later) passes
            // however late this task resumes on a loaded machine.
            unlink(marker)
            status = try await instance.wait(timeout: .seconds(30)) { status in
                guard status.consecutiveCheckFailures == 2 else { return false }
                _ = try? "ok".write(toFile: marker, atomically: true, encoding: .utf8)
                return true
            }
            #expect(status.health == .healthy)
            #expect(status.launchCount == 1)
            #expect(status.lastCheck == ProbeOutcome(passed: false, detail: "HTTP 404"))
            status = try await instance.wait(timeout: .seconds(30)) { $0.lastCheck?.passed == true }
            #expect(status.health == .healthy)
            #expect(status.consecutiveCheckFailures == 0)
            #expect(status.launchCount == 1)
            #expect(!instance.events().contains { $0.kind == .unhealthy })
            // Three failures in a row: unhealthy, and the instance is restarted.
            unlink(marker)
            status = try await instance.wait(timeout: .seconds(30)) { $0.launchCount == 2 }
            #expect(status.lastExit == .healthCheckFailed(detail: "HTTP 404"))
            try "ok".write(toFile: marker, atomically: true, encoding: .utf8)
            status = try await instance.wait(timeout: .seconds(30)) { $0.isReady && $0.launchCount == 2 }
            let kinds = instance.events().map(\.kind)
            #expect(kinds.filter { $0 == .healthy }.count == 2)
            #expect(kinds.filter { $0 == .unhealthy }.count == 1)
            let unhealthy = instance.events().first { $0.kind == .unhealthy }
            #expect(unhealthy?.reason == "failed health check: HTTP 404")
        }
    }

    @Test func tcpChecksPassOnAListeningPortAndFailOnAClosedOne() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        try await withTestNode { test in
            let check = HealthCheck(probe: .tcp(TCPCheck(port: "http")), interval: .milliseconds(100), timeout: .seconds(1),
                                    unhealthyThreshold: 1)
            let listening = try await test.node.supervise(try Self.webServer(rootfs, port: port, check: check))
            let status = try await listening.wait(timeout: .seconds(30)) { $0.health == .healthy }
            #expect(status.lastCheck?.detail == "connected to 127.0.0.1:\(port)")

            let closedPort = freePort()
            let policy = SupervisionPolicy(restart: RestartPolicy(policy: .never), health: check, stopTimeout: .milliseconds(300))
            let silent = try await test.node.supervise(shellService("exec sleep 1000", rootfs: rootfs, policy: policy,
                                                                    ports: ["http": closedPort]))
            let failed = try await silent.wait(timeout: .seconds(30)) { $0.isFinished }
            guard case .failed(let reason) = failed.phase else {
                Issue.record("expected failed, got \(failed.phase)")
                return
            }
            #expect(reason.hasPrefix("failed health check: connect to 127.0.0.1:\(closedPort)"))
        }
    }

    /// The command sees the service's private tmpfs (mount namespace), its hostname (UTS), its
    /// processes with the service as pid 1 (pid namespace), and runs in its cgroup.
    @Test func anExecCheckRunsInsideTheServicesNamespacesAndCgroup() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let command = ["/bin/sh", "-c",
                           "test -f /scratch/marker && hostname && cat /proc/1/comm && grep -c . /proc/self/cgroup >/dev/null && cat /proc/self/cgroup"]
            let check = HealthCheck(probe: .exec(ExecCheck(command: command)), interval: .milliseconds(200), timeout: .seconds(2))
            var service = shellService("echo > /scratch/marker; exec sleep 1000", rootfs: rootfs,
                                       policy: SupervisionPolicy(health: check, readiness: .health, stopTimeout: .milliseconds(300)))
            service.launch.hostname = "svc-exec-check"
            service.launch.mounts = [.tmpfs(at: "/scratch", mode: 0o1777)]
            service.launch.user = UserSpec(user: "web")
            service.launch.capabilities = []
            let instance = try await test.node.supervise(service)
            let status = try await instance.wait(timeout: .seconds(30)) { $0.lastCheck?.passed == true }
            let detail = status.lastCheck?.detail ?? ""
            #expect(status.lastCheck?.passed == true, "\(detail)")
            let lines = detail.split(separator: "\n").map(String.init)
            #expect(lines.first == "/bin/sh exited with status 0: svc-exec-check")
            #expect(lines.dropFirst().first == "sleep")
            #expect(lines.contains { $0.hasSuffix("/" + service.instanceID) }, "\(lines)")
            #expect(status.health == .healthy)
            // The marker is in the service's own tmpfs: not on the host's view of the rootfs.
            #expect(!FileManager.default.fileExists(atPath: rootfs.path + "/scratch/marker"))
        }
    }

    @Test func aFailingExecCheckReportsTheCommandsExitAndOutput() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let check = HealthCheck(probe: .exec(ExecCheck(command: ["/bin/sh", "-c", "echo not yet; exit 4"])),
                                    interval: .milliseconds(100), timeout: .seconds(2), unhealthyThreshold: 2)
            let policy = SupervisionPolicy(restart: RestartPolicy(policy: .never), health: check, stopTimeout: .milliseconds(300))
            let instance = try await test.node.supervise(shellService("exec sleep 1000", rootfs: rootfs, policy: policy))
            let status = try await instance.wait(timeout: .seconds(30)) { $0.isFinished }
            #expect(status.phase == .failed(reason: "failed health check: /bin/sh exited with status 4: not yet"))
        }
    }

    /// A check that prints far more than the instance's memory limit: the start of it is quoted
    /// and the rest dropped as it comes. Held in a memory file, every page was charged to the
    /// instance's cgroup (32 MiB here), and the OOM killer came for the instance's processes.
    @Test func anExecCheckPrintingMoreThanTheInstancesMemoryIsQuotedFromItsStart() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let check = HealthCheck(probe: .exec(ExecCheck(command: ["/bin/sh", "-c", "yes flotilla | head -c 100000000; exit 3"])),
                                    interval: .milliseconds(100), timeout: .seconds(20), unhealthyThreshold: 1)
            let policy = SupervisionPolicy(restart: RestartPolicy(policy: .never), health: check, stopTimeout: .milliseconds(300))
            var service = shellService("exec sleep 1000", rootfs: rootfs, policy: policy)
            service.launch.cgroupLimits = CgroupLimits(memoryMaxBytes: 32 << 20)
            let instance = try await test.node.supervise(service)
            let status = try await instance.wait(timeout: .seconds(60)) { $0.isFinished }
            let quoted = String(String(repeating: "flotilla\n", count: ExecProbe.outputBytes / 9 + 1).prefix(ExecProbe.outputBytes))
                .trimmingCharacters(in: .newlines)
            #expect(status.phase == .failed(reason: "failed health check: /bin/sh exited with status 3: " + quoted), "\(status.phase)")
        }
    }

    /// A check whose launch waits (the instance's cgroup frozen: the check's process, started in
    /// it, cannot reach its execve until thawed 2 s later) ends its 3 s timeout after it began,
    /// not 3 s after its command started: a timer started after the launch let a check run for
    /// up to twice its timeout.
    @Test func anExecChecksTimeoutCountsItsLaunch() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let check = HealthCheck(probe: .exec(ExecCheck(command: ["/bin/sleep", "100"])), interval: .milliseconds(1500),
                                    timeout: .seconds(3), unhealthyThreshold: 1)
            let policy = SupervisionPolicy(restart: RestartPolicy(policy: .never), health: check, stopTimeout: .milliseconds(300))
            let service = shellService("exec sleep 1000", rootfs: rootfs, policy: policy)
            let instance = try await test.node.supervise(service)
            let cgroup = try #require(test.node.context.cgroup(of: service.instanceID).unifiedPath)
            func members() -> [Substring] {
                ((try? String(contentsOfFile: cgroup + "/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n")
            }
            let before = members().count
            try "1".write(toFile: cgroup + "/cgroup.freeze", atomically: false, encoding: .utf8)
            defer { try? "0".write(toFile: cgroup + "/cgroup.freeze", atomically: false, encoding: .utf8) }
            // The check's process appears in the cgroup when its launch begins.
            let began = ContinuousClock.now
            let appeared = try await pollCondition(timeout: .seconds(10), every: .milliseconds(5)) { members().count > before }
            try #require(appeared, "no check process in \(cgroup)")
            let checkStarted = ContinuousClock.now
            try await Task.sleep(for: .seconds(2))
            try "0".write(toFile: cgroup + "/cgroup.freeze", atomically: false, encoding: .utf8)
            let status = try await instance.wait(timeout: .seconds(20)) { $0.lastCheck != nil }
            let took = ContinuousClock.now - checkStarted
            #expect(status.lastCheck?.passed == false, "\(status.lastCheck?.detail ?? "")")
            #expect(took < .seconds(4), "the check ended \(took) after its launch began (timeout 3s); waited \(checkStarted - began) for it")
        }
    }

    /// A check that leaves a process behind writing to the check's output: that process writes
    /// on after the check has ended (drained and dropped), where a pipe closed under it would
    /// kill it with SIGPIPE at its next write. It leaves a marker the next check finds.
    @Test func aProcessAnExecCheckLeftBehindWritesOnAfterTheCheck() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let command = ["/bin/sh", "-c", "test -f /scratch/survived && exit 0; (sleep 0.3; echo late; echo > /scratch/survived) & exit 1"]
            let check = HealthCheck(probe: .exec(ExecCheck(command: command)), interval: .milliseconds(200), timeout: .seconds(2),
                                    unhealthyThreshold: 1000)
            var service = shellService("exec sleep 1000", rootfs: rootfs, policy: SupervisionPolicy(health: check, stopTimeout: .milliseconds(300)))
            service.launch.mounts = [.tmpfs(at: "/scratch", mode: 0o1777)]
            let instance = try await test.node.supervise(service)
            let status = try await instance.wait(timeout: .seconds(15)) { $0.lastCheck?.passed == true }
            #expect(status.lastCheck?.passed == true, "\(status.lastCheck?.detail ?? "no check")")
        }
    }

    @Test func aTimedOutExecCheckIsKilledAndFails() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let check = HealthCheck(probe: .exec(ExecCheck(command: ["/bin/sleep", "100"])), interval: .milliseconds(500),
                                    timeout: .milliseconds(300), unhealthyThreshold: 1)
            let policy = SupervisionPolicy(restart: RestartPolicy(policy: .never), health: check, stopTimeout: .milliseconds(300))
            let instance = try await test.node.supervise(shellService("exec sleep 1000", rootfs: rootfs, policy: policy))
            let status = try await instance.wait(timeout: .seconds(30)) { $0.isFinished }
            #expect(status.phase == .failed(reason: "failed health check: /bin/sleep timed out after 300ms"))
        }
    }

    /// The process that enters the service's namespaces and waits for the check's command is a
    /// copy of this one, fd table included (clone without CLONE_FILES, no exec). It keeps none
    /// of those descriptors while it waits: a listener it kept open would make a restart's bind
    /// fail, a launch's status pipe it kept would make that launch wait out its timeout.
    @Test func theProcessWaitingForAnExecCheckHoldsNoDescriptors() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let (_, middle) = try await Self.superviseWithAnExecCheckInFlight(on: test, rootfs: rootfs)
            // It may not have reached its close_range yet when the command is seen: a moment.
            var held: [String] = []
            let none = await eventually(within: .seconds(2)) {
                held = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(middle)/fd")) ?? ["unreadable"]
                return held.isEmpty
            }
            #expect(none, "the check's waiting process \(middle) holds descriptors \(held)")
        }
    }

    /// The check's waiting process dies before its command (as under a stop, whose cgroup kill
    /// takes both in no set order, or the OOM killer): the command, orphaned inside the
    /// service's pid namespace, comes to the supervisor (a subreaper) as a zombie. Unreaped,
    /// the namespace's init never finished exiting and the stop waited for ever. The waiting
    /// process is killed by hand here, which makes the order certain. As the service's user
    /// (not root) the command has lost its PR_SET_PDEATHSIG and outlives the waiting process:
    /// the supervisor ends it.
    @Test(arguments: [nil, "web"])
    func aStopAfterAnExecChecksWaitingProcessDiedEnds(user: String?) async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let (instance, middle) = try await Self.superviseWithAnExecCheckInFlight(on: test, rootfs: rootfs, user: user)
            #expect(kill(middle, SIGKILL) == 0)
            // Longer than the supervisor waits for an orphaned command after the waiting
            // process's end: the stop must not be what ends it.
            try await Task.sleep(for: .milliseconds(1500))
            instance.requestStop()
            let status = try await instance.wait(timeout: .seconds(10)) { $0.isFinished }
            #expect(status.phase == .stopped)
        }
    }

    /// An exec check's launch waits for its command's execve, up to the check's timeout when
    /// that does not come (here the instance's cgroup is frozen, so the process joining it stops
    /// at once). It ran on the node's event loop, and every other instance's timers and state
    /// changes waited with it: another instance's stop took until the check timed out.
    @Test(.enabled(if: cgroup2Freezes, "needs cgroup2's cgroup.freeze"))
    func anExecCheckThatCannotReachExecHoldsUpNoOtherInstance() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let other = try await test.node.supervise(
                shellService("exec sleep 1000", rootfs: rootfs, id: "other", policy: SupervisionPolicy(stopTimeout: .milliseconds(300))))
            _ = try await other.wait(timeout: .seconds(30)) { $0.phase == .running }
            let frozen = try await Self.superviseFrozenWithACheckStuck(on: test, rootfs: rootfs, id: "frozen")
            defer { Self.thaw(frozen) }
            let start = ContinuousClock.now
            other.requestStop()
            let status = try await other.wait(timeout: .seconds(20)) { $0.isFinished }
            let took = ContinuousClock.now - start
            #expect(status.phase == .stopped)
            #expect(took < .seconds(3), "another instance's stop took \(took) while a check's launch waited")
        }
    }

    /// Two such checks at once: instances still start. The checks' launches have threads of
    /// their own; on the two that launch instances they held every start and restart.
    @Test(.enabled(if: cgroup2Freezes, "needs cgroup2's cgroup.freeze"))
    func twoExecChecksThatCannotReachExecHoldUpNoLaunch() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let first = try await Self.superviseFrozenWithACheckStuck(on: test, rootfs: rootfs, id: "frozen-1")
            defer { Self.thaw(first) }
            let second = try await Self.superviseFrozenWithACheckStuck(on: test, rootfs: rootfs, id: "frozen-2")
            defer { Self.thaw(second) }
            let start = ContinuousClock.now
            let launched = try await test.node.supervise(
                shellService("exec sleep 1000", rootfs: rootfs, id: "launched", policy: SupervisionPolicy(stopTimeout: .milliseconds(300))))
            _ = try await launched.wait(timeout: .seconds(30)) { $0.phase == .running }
            let took = ContinuousClock.now - start
            #expect(took < .seconds(3), "an instance took \(took) to start while two checks' launches waited")
        }
    }

    /// A healthy instance with an exec check (timeout 10 s), then frozen through cgroup2's
    /// cgroup.freeze until a check's launch waits for an execve that cannot come: its waiting
    /// process, a child of the supervisor (this process) other than the main process, is in the
    /// frozen cgroup with no child of its own. (A freeze that lands while a check's command runs
    /// freezes that command instead; the next check, after its timeout, gets stuck.) Returns the
    /// cgroup.freeze file, for `thaw`.
    static func superviseFrozenWithACheckStuck(on test: TestNode, rootfs: BusyboxRootfs, id: String) async throws -> String {
        let check = HealthCheck(probe: .exec(ExecCheck(command: ["/bin/true"])), interval: .milliseconds(200), timeout: .seconds(10))
        let policy = SupervisionPolicy(health: check, stopTimeout: .milliseconds(300))
        let checked = try await test.node.supervise(shellService("exec sleep 1000", rootfs: rootfs, id: id, policy: policy))
        let healthy = try await checked.wait(timeout: .seconds(30)) { $0.health == .healthy }
        let cgroup = try #require(test.node.context.cgroup(of: checked.instanceID).unifiedPath)
        try "1".write(toFile: cgroup + "/cgroup.freeze", atomically: false, encoding: .utf8)
        let stuck = await eventually(within: .seconds(25)) {
            let members = ((try? String(contentsOfFile: cgroup + "/cgroup.procs", encoding: .utf8)) ?? "").split(separator: "\n")
            return members.compactMap { Int32($0) }.contains { pid in
                pid != healthy.pid && Self.parent(of: pid) == getpid() && Self.hasNoChild(pid)
            }
        }
        try #require(stuck, "no check's launch got stuck in the frozen cgroup of \(checked.instanceID)")
        return cgroup + "/cgroup.freeze"
    }

    static func thaw(_ freeze: String) {
        try? "0".write(toFile: freeze, atomically: false, encoding: .utf8)
    }

    static func parent(of pid: Int32) -> Int32? {
        let status = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
        return status.split(separator: "\n").first { $0.hasPrefix("PPid:") }.flatMap { Int32($0.dropFirst(5).trimmingCharacters(in: .whitespaces)) }
    }

    static func hasNoChild(_ pid: Int32) -> Bool {
        let children = (try? String(contentsOfFile: "/proc/\(pid)/task/\(pid)/children", encoding: .utf8)) ?? "unreadable"
        return children.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty
    }

    /// A service whose exec check's command (`sleep 20`) is running, and the pid of the process
    /// that waits for that command.
    static func superviseWithAnExecCheckInFlight(on test: TestNode, rootfs: BusyboxRootfs, user: String? = nil) async throws -> (SupervisedInstance, Int32) {
        let marker = "exec-check-" + String(UInt32.random(in: 0...UInt32.max))
        let check = HealthCheck(probe: .exec(ExecCheck(command: ["/bin/sh", "-c", "sleep 20; : \(marker)"])),
                                interval: .milliseconds(200), timeout: .seconds(30))
        let policy = SupervisionPolicy(health: check, stopTimeout: .milliseconds(300))
        var service = shellService("exec sleep 1000", rootfs: rootfs, policy: policy)
        if let user { service.launch.user = UserSpec(user: user) }
        let instance = try await test.node.supervise(service)
        var waiter: Int32?
        _ = await eventually(within: .seconds(10)) {
            waiter = Self.parent(ofProcessWhoseCommandLineHas: marker)
            return waiter != nil
        }
        return (instance, try #require(waiter, "the check's command never ran"))
    }

    /// The parent pid of the process whose command line contains `text`.
    static func parent(ofProcessWhoseCommandLineHas text: String) -> Int32? {
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] where Int32(entry) != nil {
            guard let commandLine = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline"),
                  String(decoding: commandLine, as: UTF8.self).contains(text), let pid = Int32(entry)
            else { continue }
            return parent(of: pid)
        }
        return nil
    }

    @Test func anHTTPCheckWithoutAnAnswerTimesOut() async throws {
        let rootfs = try BusyboxRootfs()
        let port = freePort()
        try await withTestNode { test in
            // nc accepts the connection and never answers (its input never ends).
            let check = HealthCheck(probe: .http(HTTPCheck(port: "http")), interval: .milliseconds(500),
                                    timeout: .milliseconds(300), unhealthyThreshold: 1)
            let policy = SupervisionPolicy(restart: RestartPolicy(policy: .never), health: check, stopTimeout: .milliseconds(300))
            let instance = try await test.node.supervise(shellService("sleep 1000 | nc -l -p \(port)", rootfs: rootfs, policy: policy,
                                                                      ports: ["http": port]))
            let status = try await instance.wait(timeout: .seconds(30)) { $0.isFinished }
            #expect(status.phase == .failed(reason: "failed health check: no answer from 127.0.0.1:\(port) within 300ms"))
        }
    }

    @Test(arguments: [
        ("HTTP/1.1 200 OK\r\n", 200), ("HTTP/1.0 404 Not Found\r\nServer: x\r\n", 404), ("HTTP/1.1 503\n", 503),
        ("HTTP/1.1 204\r\n", 204), ("HTTP/1.1 2040\r\n", nil),
        ("HTTP/1.1 200 OK", nil), ("SSH-2.0-OpenSSH\r\n", nil), ("HTTP/1.1 20 OK\r\n", nil),
    ] as [(String, Int?)])
    func statusLinesParse(text: String, code: Int?) {
        #expect(NetworkProbe.statusCode(Array(text.utf8)) == code)
    }
}

/// Whether instance cgroups can be frozen through cgroup2's cgroup.freeze (pure cgroup v1 has
/// only the v1 freezer, where SIGKILL does not end a frozen process).
let cgroup2Freezes = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"].contains {
    FileManager.default.fileExists(atPath: $0 + "/cgroup.controllers")
}
