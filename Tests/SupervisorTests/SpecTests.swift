import CSpawn
import Foundation
import Glibc
import Testing

@testable import Supervisor

/// The pure parts: names, maps, passwd resolution, the mount plan, validation, the seccomp program.
@Suite struct SpecTests {
    @Test func capabilityNamesRoundTripAndMaskMatchesProcStatus() {
        for capability in LinuxCapability.allCases {
            #expect(LinuxCapability(name: capability.name) == capability)
        }
        #expect(LinuxCapability(name: "net_bind_service") == .netBindService)
        #expect(LinuxCapability(name: "CAP_NOPE") == nil)
        #expect(LinuxCapability.checkpointRestore.rawValue == 40)
        #expect(Set<LinuxCapability>([.netBindService]).mask == 0x400)
        #expect(Set<LinuxCapability>([.chown, .sysAdmin]).mask == 0x20_0001)
    }

    @Test func idMapTextIsOneLinePerRange() {
        let mapping = UserNamespaceMapping(uids: [IDRange(insideStart: 0, outsideStart: 100_000, count: 1000),
                                       IDRange(insideStart: 1000, outsideStart: 5000, count: 1)],
                                gids: [])
        #expect(mapping.uids.mapFileText == "0 100000 1000\n1000 5000 1\n")
        #expect(mapping.uids.contains(inside: 999))
        #expect(mapping.uids.contains(inside: 1000))
        #expect(!mapping.uids.contains(inside: 1001))
    }

    static let database = PasswdDatabase(
        passwd: "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000:web:/home/web:/bin/sh\nbroken line\n",
        group: "root:x:0:\nweb:x:1000:\nstaff:x:2000:web,other\nwheel:x:10:\n")

    @Test(arguments: [
        (UserSpec(user: "web"), ResolvedIdentity(uid: 1000, gid: 1000, groups: [1000, 2000], home: "/home/web")),
        (UserSpec(user: "1000"), ResolvedIdentity(uid: 1000, gid: 1000, groups: [1000, 2000], home: "/home/web")),
        (UserSpec(user: "web", group: "wheel"), ResolvedIdentity(uid: 1000, gid: 10, groups: [10, 2000], home: "/home/web")),
        (UserSpec(user: "4242"), ResolvedIdentity(uid: 4242, gid: 0, groups: [0], home: "/")),
        (UserSpec(user: "4242", group: "7", additionalGroups: ["staff", "8"]),
         ResolvedIdentity(uid: 4242, gid: 7, groups: [7, 2000, 8], home: "/")),
        (UserSpec.root, ResolvedIdentity(uid: 0, gid: 0, groups: [0], home: "/root")),
    ])
    func passwdResolutionFollowsRunc(user: UserSpec, expected: ResolvedIdentity) throws {
        #expect(try Self.database.resolve(user, source: "/r") == expected)
    }

    @Test func unknownNamesAreNamedWithTheirFile() {
        #expect(throws: SpawnError.unknownIdentity("user \"nobody\" not found in /r/etc/passwd")) {
            try Self.database.resolve(UserSpec(user: "nobody"), source: "/r")
        }
        #expect(throws: SpawnError.unknownIdentity("group \"adm\" not found in /r/etc/group")) {
            try Self.database.resolve(UserSpec(user: "web", group: "adm"), source: "/r")
        }
    }

    @Test func mountPlanForARootfsFollowsRuncDefaults() {
        var spec = LaunchSpec(instanceID: "a", command: ["/bin/true"], root: .directory("/r"))
        spec.mounts = [.bind("/data", at: "/srv", readOnly: true), .tmpfs(at: "/tmp", sizeBytes: 1024, mode: 0o1777)]
        let plan = MountPlan(spec: spec) { $0 == "/data" }
        #expect(plan.steps.map(\.target) == [
            "/proc", "/dev", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty",
            "/dev/pts", "/dev/shm", "/dev/ptmx", "/dev/fd", "/dev/stdin", "/dev/stdout", "/dev/stderr", "/sys",
        ] + KernelPaths.readOnly + KernelPaths.masked + ["/srv", "/tmp"])
        #expect(plan.steps[16].kind == .readOnly && plan.steps[16].target == "/proc/bus")
        #expect(plan.steps.filter { $0.kind == .mask }.map(\.target).contains("/sys/firmware"))
        #expect(plan.steps[2].kind == .device(major: 1, minor: 3))
        #expect(plan.steps[15].kind == .filesystem(source: "sysfs", type: "sysfs", flags: 0xf, data: nil))
        #expect(plan.steps[plan.steps.count - 2].kind == .bind(source: "/data", recursive: true, attributes: 1, targetIsFile: false))
        #expect(plan.steps[plan.steps.count - 1].kind == .filesystem(source: "tmpfs", type: "tmpfs", flags: 0x6, data: "mode=1777,size=1024"))
    }

    /// mknod and sysfs are refused in a user namespace (without its own network namespace):
    /// the host's nodes and /sys are bound instead.
    @Test func mountPlanInAUserNamespaceBindsDevicesAndSys() {
        var spec = LaunchSpec(instanceID: "a", command: ["/bin/true"], root: .directory("/r"))
        spec.namespaces.insert(.user)
        let plan = MountPlan(spec: spec) { _ in true }
        #expect(plan.steps[2].kind == .bind(source: "/dev/null", recursive: false, attributes: 0, targetIsFile: true))
        #expect(plan.steps[15].kind == .bind(source: "/sys", recursive: true, attributes: 0xf, targetIsFile: false))
    }

    @Test func hostModeMountsOnlyProcAndItsMasksForItsPidNamespace() {
        var spec = LaunchSpec(instanceID: "a", command: ["/bin/true"], root: .host)
        // The new /proc, with the kernel's knobs read-only and its sensitive files masked; the
        // host's /sys is left alone (the service shares the host's filesystem by choice).
        #expect(MountPlan(spec: spec) { _ in true }.steps.map(\.target)
            == ["/proc"] + KernelPaths.readOnly + KernelPaths.masked.filter { $0.hasPrefix("/proc/") })
        spec.namespaces.remove(.pid)
        #expect(MountPlan(spec: spec) { _ in true }.steps.isEmpty)
    }

    @Test func validationListsEveryProblemWithItsField() {
        var spec = LaunchSpec(instanceID: "bad/id", command: [], root: .directory("relative"))
        spec.readOnlyRoot = true
        spec.root = .host
        spec.mounts = [.bind("data", at: "srv")]
        spec.namespaces.insert(.user)
        spec.cgroupLimits.cpuWeight = 0
        spec.environment = ["A=B": "x"]
        #expect(spec.problems() == [
            "instanceID: \"bad/id\" must be 1–128 of letters, digits, '.', '_', '-'",
            "command: must name a program",
            "environment.A=B: names may not be empty or hold '=' or NUL",
            "readOnlyRoot: needs a root directory, not the host's",
            "mounts[0].target: \"srv\" must be an absolute path below /",
            "mounts[0].source: \"data\" must be an absolute path",
            "idMapping: required exactly when the user namespace is requested",
            "cgroupLimits.cpuWeight: 0 is outside 1…10000",
        ])
        #expect(LaunchSpec(instanceID: "ok-1.a_b", command: ["x"], root: .host).problems().isEmpty)
    }

    /// The host's /dev/null is (1, 3); large numbers follow the kernel's new_encode_dev.
    @Test func deviceNumbersMatchTheKernel() {
        var info = stat()
        #expect(stat("/dev/null", &info) == 0)
        #expect(Launcher.makeDevice(major: 1, minor: 3) == UInt64(info.st_rdev))
        #expect(Launcher.makeDevice(major: 259, minor: 70000) == 0x1111_0370)
    }

    @Test func errorsReadLikeCrun() {
        #expect(SystemCallError(call: "pivot_root", path: "/srv/web/rootfs", errno: EINVAL).description
            == "pivot_root \"/srv/web/rootfs\": Invalid argument")
        #expect(SystemCallError(call: "capset", errno: EPERM).description == "capset: Operation not permitted")
    }

    /// The program is BPF (8-byte instructions), depends on the capabilities that gate calls
    /// (CAP_SYS_ADMIN allows mount and namespaces), and is compiled once per such set.
    @Test func seccompProgramDependsOnGatingCapabilities() throws {
        let plain = try SeccompFilter.compile(keeping: [])
        let admin = try SeccompFilter.compile(keeping: [.sysAdmin])
        #expect(!plain.isEmpty && plain.count % 8 == 0)
        #expect(admin.count < plain.count)
        let cache = SeccompFilterCache()
        #expect(try cache.program(for: .defaultDenyList, keeping: [.netBindService]) == plain)
        #expect(try cache.program(for: .unconfined, keeping: []).isEmpty)
    }
}

/// Swift's stage enum mirrors `enum fl_stage` in CSpawn, value for value.
@Suite struct StageMirrorTests {
    @Test func everyStageHasTheCValue() {
        let c: [(SpawnStage, fl_stage)] = [
            (.pipe, FL_STAGE_PIPE), (.stack, FL_STAGE_STACK), (.clone3, FL_STAGE_CLONE3), (.gidMap, FL_STAGE_GID_MAP),
            (.uidMap, FL_STAGE_UID_MAP), (.release, FL_STAGE_RELEASE), (.statusRead, FL_STAGE_STATUS_READ),
            (.cgroupJoin, FL_STAGE_CGROUP_JOIN), (.waitRelease, FL_STAGE_WAIT_RELEASE),
            (.userNamespaceRoot, FL_STAGE_USERNS_ROOT), (.cgroupNamespace, FL_STAGE_CGROUP_NS),
            (.signals, FL_STAGE_SIGNALS), (.mountPrivate, FL_STAGE_MOUNT_PRIVATE), (.rootfsBind, FL_STAGE_ROOTFS_BIND),
            (.rootfsChdir, FL_STAGE_ROOTFS_CHDIR), (.openRoot, FL_STAGE_OPEN_ROOT), (.openTree, FL_STAGE_OPEN_TREE),
            (.mountSetattr, FL_STAGE_MOUNT_SETATTR), (.pivotRoot, FL_STAGE_PIVOT_ROOT), (.mkdir, FL_STAGE_MKDIR),
            (.mount, FL_STAGE_MOUNT), (.detachOldRoot, FL_STAGE_DETACH_OLD_ROOT), (.readonlyRoot, FL_STAGE_READONLY_ROOT),
            (.hostname, FL_STAGE_HOSTNAME), (.rlimit, FL_STAGE_RLIMIT), (.capabilityBoundingSet, FL_STAGE_CAPBSET),
            (.keepCapabilities, FL_STAGE_KEEPCAPS), (.setgroups, FL_STAGE_SETGROUPS), (.setresgid, FL_STAGE_SETRESGID),
            (.setresuid, FL_STAGE_SETRESUID), (.capset, FL_STAGE_CAPSET), (.ambientCapabilities, FL_STAGE_AMBIENT),
            (.noNewPrivileges, FL_STAGE_NO_NEW_PRIVS), (.seccomp, FL_STAGE_SECCOMP), (.chdir, FL_STAGE_CHDIR),
            (.fileDescriptors, FL_STAGE_FDS), (.execve, FL_STAGE_EXECVE), (.joinNamespaces, FL_STAGE_SETNS),
            (.joinFork, FL_STAGE_JOIN_FORK), (.loopback, FL_STAGE_LOOPBACK),
        ]
        #expect(c.count == SpawnStage.allCases.count)
        for (swift, cValue) in c { #expect(swift.rawValue == Int32(cValue.rawValue), "\(swift)") }
    }
}

/// /proc/PID/status signal masks, and which signals a pid-namespace init drops.
@Suite struct SignalDispositionTests {
    static let status = """
        Name:\tsh
        Pid:\t4242
        SigQ:\t0/31409
        SigPnd:\t0000000000000000
        ShdPnd:\t0000000000000000
        SigBlk:\t0000000000010000
        SigIgn:\t0000000000000004
        SigCgt:\t0000000000002002
        CapInh:\t0000000000000000

        """

    @Test func masksAreReadAndOnlyUnhandledUnblockedSignalsAreDropped() throws {
        let disposition = try #require(SignalDisposition.parse(Self.status))
        #expect(disposition == SignalDisposition(caught: 0x2002, blocked: 0x10000))
        #expect(!disposition.initDiscards(SIGINT))  // caught (bit 1)
        #expect(!disposition.initDiscards(SIGALRM))  // caught (bit 13)
        #expect(!disposition.initDiscards(SIGCHLD))  // blocked (bit 16): pending until a handler may exist
        #expect(disposition.initDiscards(SIGTERM))
        #expect(disposition.initDiscards(SIGQUIT))  // ignored (SIG_IGN) is dropped too
        #expect(!disposition.initDiscards(SIGKILL) && !disposition.initDiscards(SIGSTOP))
        #expect(!disposition.initDiscards(0))
        #expect(SignalDisposition.parse("Name:\tsh\n") == nil)
    }
}
