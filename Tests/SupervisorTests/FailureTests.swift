import Foundation
import Glibc
import Testing
import TestSupport

@testable import Supervisor

/// One way to make a launch fail, and the exact message it must produce.
struct FailureCase: Sendable, CustomTestStringConvertible {
    var name: String
    var stage: SpawnStage?
    /// Changes a working spec so that it fails; gets the rootfs path.
    var breakSpec: @Sendable (inout LaunchSpec, String) -> Void
    /// The message, from the rootfs path, the test's cgroup parent and the instance id.
    var message: @Sendable (_ rootfs: String, _ parent: String, _ instanceID: String) -> String

    var testDescription: String { name }
}

/// Every failure names its stage, the call, the path and the errno, and leaves no cgroup and no
/// mount behind.
@Suite(.dedicatedThread, .enabled(if: isRoot, "needs root: namespaces and cgroups"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct FailureTests {
    static let cases: [FailureCase] = [
        FailureCase(name: "missing rootfs", stage: .rootfsBind,
                    breakSpec: { spec, rootfs in spec.root = .directory(rootfs + "/missing") },
                    message: { rootfs, _, _ in "mount --rbind \"\(rootfs)/missing\": No such file or directory" }),
        FailureCase(name: "pivot_root onto the current root", stage: .pivotRoot,
                    breakSpec: { spec, _ in spec.root = .directory("/") },
                    message: { _, _, _ in "pivot_root \"/\": Device or resource busy" }),
        FailureCase(name: "missing bind source", stage: .openTree,
                    breakSpec: { spec, _ in spec.mounts = [.bind("/nonexistent-flotilla", at: "/data")] },
                    message: { _, _, _ in "open_tree \"/nonexistent-flotilla\": No such file or directory" }),
        FailureCase(name: "mount point below a file", stage: .mkdir,
                    breakSpec: { spec, _ in spec.mounts = [.tmpfs(at: "/etc/passwd/sub")] },
                    message: { _, _, _ in "mkdir \"/etc/passwd/sub\": Not a directory" }),
        FailureCase(name: "directory bound onto a file", stage: .mount,
                    breakSpec: { spec, _ in spec.mounts = [.bind("/tmp", at: "/etc/passwd")] },
                    message: { _, _, _ in "move_mount \"/etc/passwd\": Invalid argument" }),
        FailureCase(name: "soft rlimit above hard", stage: .rlimit,
                    breakSpec: { spec, _ in spec.resourceLimits = [ResourceLimit(.openFiles, soft: 100, hard: 10)] },
                    message: { _, _, _ in "setrlimit \"RLIMIT_NOFILE\": Invalid argument" }),
        FailureCase(name: "uid outside the user namespace's map", stage: .setresuid,
                    breakSpec: { spec, _ in
                        spec.namespaces.insert(.user)
                        spec.idMapping = .shifted(to: 100_000, count: 1000)
                        spec.user = UserSpec(user: "5000", group: "0")
                    },
                    message: { _, _, _ in "setresuid \"5000\": Invalid argument" }),
        FailureCase(name: "missing working directory", stage: .chdir,
                    breakSpec: { spec, _ in spec.workingDirectory = "/nonexistent" },
                    message: { _, _, _ in "chdir \"/nonexistent\": No such file or directory" }),
        FailureCase(name: "missing program", stage: .execve,
                    breakSpec: { spec, _ in spec.command = ["/bin/nginx"] },
                    message: { _, _, _ in "execve \"/bin/nginx\": No such file or directory" }),
        FailureCase(name: "program not executable", stage: .execve,
                    breakSpec: { spec, _ in spec.command = ["/etc/passwd"] },
                    message: { _, _, _ in "execve \"/etc/passwd\": Permission denied" }),
        FailureCase(name: "program not on PATH", stage: .execve,
                    breakSpec: { spec, _ in spec.command = ["nginx"] },
                    message: { _, _, _ in "execve \"nginx\": No such file or directory" }),
        FailureCase(name: "CPU quota below the kernel's 1 ms minimum", stage: nil,
                    breakSpec: { spec, _ in spec.cgroupLimits.cpuMaxMicroCores = 1 },
                    message: { _, parent, id in
                        "write \"/sys/fs/cgroup/cpu/\(parent)/\(id)/cpu.cfs_quota_us\": Invalid argument"
                    }),
        FailureCase(name: "unknown user", stage: nil,
                    breakSpec: { spec, _ in spec.user = UserSpec(user: "nosuch") },
                    message: { rootfs, _, _ in "user \"nosuch\" not found in \(rootfs)/etc/passwd" }),
        FailureCase(name: "unknown group", stage: nil,
                    breakSpec: { spec, _ in spec.user = UserSpec(user: "web", additionalGroups: ["wheel"]) },
                    message: { rootfs, _, _ in "group \"wheel\" not found in \(rootfs)/etc/group" }),
        FailureCase(name: "relative working directory and hostname without uts", stage: nil,
                    breakSpec: { spec, _ in
                        spec.workingDirectory = "srv"
                        spec.hostname = "x"
                        spec.namespaces.remove(.uts)
                    },
                    message: { _, _, _ in
                        "invalid launch spec: workingDirectory: must be an absolute path; hostname: needs the uts namespace"
                    }),
    ]

    @Test(arguments: cases)
    func failureIsExactAndLeavesNothingBehind(_ failure: FailureCase) throws {
        let rootfs = try BusyboxRootfs()
        let test = try TestSupervisor()
        let mountsBefore = mountTable()
        var launch = spec(["/bin/true"], rootfs: rootfs)
        failure.breakSpec(&launch, rootfs.path)
        do {
            _ = try test.supervisor.launch(launch)
            Issue.record("\(failure.name): launch succeeded")
        } catch {
            #expect(error.description == failure.message(rootfs.path, test.parent, launch.instanceID))
            if let stage = failure.stage {
                guard case .launch(let actual, _) = error else {
                    Issue.record("not a launch-stage error: \(error)")
                    return
                }
                #expect(actual == stage)
            }
        }
        #expect(mountTable() == mountsBefore)
        #expect(test.supervisor.runningCount == 0)
        try test.finish()
    }

    /// The id map is written by the parent between clone3 and the release of the child; a map the
    /// kernel refuses (overlapping ranges) fails there, and the child is killed and reaped.
    @Test func refusedIDMapFailsInTheParent() throws {
        let rootfs = try BusyboxRootfs()
        let test = try TestSupervisor()
        var launch = spec(["/bin/true"], rootfs: rootfs)
        launch.namespaces.insert(.user)
        let overlapping = [IDRange(insideStart: 0, outsideStart: 100_000, count: 10),
                           IDRange(insideStart: 5, outsideStart: 200_000, count: 10)]
        launch.idMapping = UserNamespaceMapping(uids: [IDRange(insideStart: 0, outsideStart: 100_000, count: 65536)],
                                     gids: overlapping)
        #expect {
            _ = try test.supervisor.launch(launch)
        } throws: { error in
            guard let error = error as? SpawnError, case .launch(.gidMap, let call) = error else { return false }
            return call.call == "write" && call.path?.hasPrefix("/proc/") == true
                && call.path?.hasSuffix("/gid_map") == true && call.errno == EINVAL
        }
        try test.finish()
    }

    /// A second instance with a running instance's id fails on its cgroup and must not take the
    /// first one's cgroup down with it.
    @Test func duplicateInstanceLeavesTheFirstAlone() async throws {
        let rootfs = try BusyboxRootfs()
        let test = try TestSupervisor()
        let launch = spec(["/bin/sleep", "100"], rootfs: rootfs)
        let first = try test.supervisor.launch(launch)
        let unified = try #require(test.supervisor.layout.unifiedMount)
        #expect(throws: SpawnError.cgroup(SystemCallError(
            call: "mkdir", path: "\(unified)/\(test.parent)/\(launch.instanceID)", errno: EEXIST))) {
            _ = try test.supervisor.launch(launch)
        }
        for directory in first.cgroup.directories {
            #expect(FileManager.default.fileExists(atPath: directory))
        }
        _ = await first.stop(timeout: .milliseconds(50))
        try test.finish()
    }
}
