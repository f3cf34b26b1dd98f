import CSpawn
import Foundation
import Glibc
import Testing
import TestSupport

@testable import Supervisor

/// Layout detection from mountinfo text, and the limit files' formats.
@Suite struct CgroupFormatTests {
    static let unifiedOnly = """
        25 1 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
        27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
        """
    static let legacyOnly = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        39 31 0:36 / /sys/fs/cgroup/my\\040pids rw,relatime - cgroup cgroup rw,pids
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
        """
    static let hybrid = legacyOnly + "\n41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n"

    @Test func parsesCgroupTwoOnly() {
        let layout = CgroupLayout.parse(mountInfo: Self.unifiedOnly)
        #expect(layout.mode == .unified)
        #expect(layout.unifiedMount == "/sys/fs/cgroup")
        #expect(layout.legacyMounts.isEmpty)
    }

    @Test func parsesLegacyWithCoMountedControllersAndEscapes() {
        let layout = CgroupLayout.parse(mountInfo: Self.legacyOnly)
        #expect(layout.mode == .legacy)
        #expect(layout.legacyMounts == [
            "cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
            "memory": "/sys/fs/cgroup/memory", "pids": "/sys/fs/cgroup/my pids",
        ])
    }

    @Test func parsesHybrid() {
        let layout = CgroupLayout.parse(mountInfo: Self.hybrid)
        #expect(layout.mode == .hybrid)
        #expect(layout.unifiedMount == "/sys/fs/cgroup/unified")
        #expect(layout.legacyMounts["memory"] == "/sys/fs/cgroup/memory")
    }

    @Test func noCgroupFilesystemIsNoMode() {
        #expect(CgroupLayout.parse(mountInfo: "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw").mode == nil)
    }

    /// Documentation/admin-guide/cgroup-v2.rst: memory.max and pids.max take a number or "max",
    /// memory.swap.max "0" turns swap off, cpu.max is "$MAX $PERIOD", cpu.weight is 1…10000.
    @Test func unifiedWritesUseTheKernelFormats() {
        let limits = CgroupLimits(memoryMaxBytes: 32 << 20, cpuMaxMicroCores: 1_500_000, cpuWeight: 200, pidsMax: 16)
        #expect(limits.unifiedWrites(swapFileExists: true).map { "\($0.file)=\($0.value)" } == [
            "memory.max=33554432", "memory.swap.max=0", "cpu.max=150000 100000", "cpu.weight=200", "pids.max=16",
        ])
        #expect(!limits.unifiedWrites(swapFileExists: false).contains { $0.file == "memory.swap.max" })
        #expect(CgroupLimits().unifiedWrites(swapFileExists: true).isEmpty)
    }

    /// cgroup-v1/memory.rst (memsw after the limit, never below it), sched-bwc.rst (period, then
    /// quota), cpu.shares with systemd's mapping (weight 100 is shares 1024), pids.
    @Test func legacyWritesUseTheKernelFormats() {
        let limits = CgroupLimits(memoryMaxBytes: 32 << 20, cpuMaxMicroCores: 500_000, cpuWeight: 200, pidsMax: 16)
        #expect(limits.legacyWrites(memswFileExists: true).map { "\($0.file)=\($0.value)" } == [
            "memory.limit_in_bytes=33554432", "memory.memsw.limit_in_bytes=33554432", "cpu.cfs_period_us=100000", "cpu.cfs_quota_us=50000",
            "cpu.shares=2048", "pids.max=16",
        ])
    }

    @Test(arguments: [(1, 10), (100, 1024), (10_000, 102_400)] as [(UInt64, UInt64)])
    func cpuWeightMapsToShares(weight: UInt64, shares: UInt64) {
        #expect(CgroupLimits(cpuWeight: weight).cpuShares == shares)
    }
}

/// The three layouts, for real: this hybrid host as detected, its cgroup2 mount alone (cgroup2
/// code: CLONE_INTO_CGROUP, cgroup.kill, cgroup.events), and its v1 mounts alone (v1 code:
/// cgroup.procs join, freezer kill, cpuacct).
@Suite(.dedicatedThread, .enabled(if: isRoot, "needs root: namespaces and cgroups"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct CgroupLayoutTests {
    enum Variant: String, CaseIterable, Sendable { case detected, unifiedOnly, legacyOnly }

    static func layout(_ variant: Variant) throws -> CgroupLayout {
        var layout = try CgroupLayout.detect()
        switch variant {
        case .detected: break
        case .unifiedOnly: layout.legacyMounts = [:]
        case .legacyOnly: layout.unifiedMount = nil
        }
        return layout
    }

    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/sys/fs/cgroup/unified"),
                   "not a hybrid host: no cgroup2 mount at /sys/fs/cgroup/unified"))
    func detectsThisHostAsHybrid() throws {
        let layout = try CgroupLayout.detect()
        #expect(layout.mode == .hybrid)
        #expect(layout.unifiedMount == "/sys/fs/cgroup/unified")
        #expect(layout.legacyMounts["memory"] == "/sys/fs/cgroup/memory")
        #expect(layout.legacyMounts["pids"] == "/sys/fs/cgroup/pids")
        #expect(!layout.unifiedControllers.contains("memory"))
    }

    /// The cgroup of `pid` in each hierarchy, from /proc/PID/cgroup: "0" for cgroup2, else the
    /// controller list.
    static func membership(of pid: pid_t) throws -> [String: String] {
        var result: [String: String] = [:]
        for line in try String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8).split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            result[fields[0] == "0" ? "0" : String(fields[1])] = String(fields[2])
        }
        return result
    }

    @Test(arguments: Variant.allCases)
    func serviceLandsInItsCgroupAndIsKilledWholeWithItsGrandchild(variant: Variant) async throws {
        let rootfs = try BusyboxRootfs()
        let test = try TestSupervisor(layout: Self.layout(variant))
        // No pid namespace: only the cgroup kill can take the grandchild.
        var launch = spec(["/bin/sh", "-c", "sleep 1000 & exec sleep 1000"], rootfs: rootfs)
        launch.namespaces.remove(.pid)
        if variant != .unifiedOnly {
            launch.cgroupLimits = CgroupLimits(memoryMaxBytes: 32 << 20, cpuMaxMicroCores: 500_000, cpuWeight: 200,
                                               pidsMax: 16)
        }
        let instance = try test.supervisor.launch(launch)
        let path = "/\(test.parent)/\(launch.instanceID)"
        let membership = try Self.membership(of: instance.pid)
        switch variant {
        case .detected:
            #expect(membership["0"] == path)
            #expect(membership["memory"] == path && membership["cpu"] == path && membership["pids"] == path)
        case .unifiedOnly:
            #expect(membership["0"] == path)
            #expect(membership["memory"] == "/" || membership["memory"]?.hasPrefix("/process_api") == true)
        case .legacyOnly:
            #expect(membership["0"] == "/")
            for controller in ["memory", "cpu", "cpuacct", "pids", "freezer"] { #expect(membership[controller] == path) }
        }
        if variant != .unifiedOnly {
            let read = { (controller: String, file: String) in
                try String(contentsOfFile: "/sys/fs/cgroup/\(controller)\(path)/\(file)", encoding: .utf8)
            }
            #expect(try read("memory", "memory.limit_in_bytes") == "33554432\n")
            #expect(try read("memory", "memory.memsw.limit_in_bytes") == "33554432\n")
            #expect(try read("cpu", "cpu.cfs_quota_us") == "50000\n")
            #expect(try read("cpu", "cpu.shares") == "2048\n")
            #expect(try read("pids", "pids.max") == "16\n")
        }
        // Wait for the grandchild, then hold it by pidfd.
        var grandchild: Int32 = -1
        for _ in 0..<200 where grandchild < 0 {
            for pid in try InstanceCgroup.processes(in: instance.cgroup.directories[0]) where pid != instance.pid {
                let commandLine = (try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? ""
                if commandLine.hasPrefix("sleep\u{0}1000") { grandchild = fl_pidfd_open(pid) }
            }
            if grandchild < 0 { try await Task.sleep(for: .milliseconds(10)) }
        }
        try #require(grandchild >= 0)
        defer { close(grandchild) }
        if let unified = instance.cgroup.unifiedPath {
            #expect(try String(contentsOfFile: unified + "/cgroup.events", encoding: .utf8).contains("populated 1"))
        }
        let stats = try instance.stats()
        #expect(stats.pidsCurrent == (variant == .unifiedOnly ? nil : 2))
        #expect(stats.cpuUsage != nil)
        try instance.kill()
        let exit = await instance.wait()
        #expect(exit.termination == .signaled(signal: SIGKILL, coreDumped: false))
        #expect(exit.cleanupError == nil)
        #expect(fl_pidfd_send_signal(grandchild, 0) == -1 && errno == ESRCH)
        for directory in instance.cgroup.directories { #expect(!FileManager.default.fileExists(atPath: directory)) }
        try test.finish()
    }

    /// This host's cgroup2 has no memory controller: a memory limit there must fail, exactly.
    @Test func limitWithoutItsControllerFails() throws {
        let rootfs = try BusyboxRootfs()
        let test = try TestSupervisor(layout: Self.layout(.unifiedOnly))
        try #require(!test.supervisor.layout.unifiedControllers.contains("memory"))
        var launch = spec(["/bin/true"], rootfs: rootfs)
        launch.cgroupLimits.memoryMaxBytes = 1 << 30
        #expect(throws: SpawnError.cgroup(SystemCallError(call: "cgroup controller", path: "memory", errno: ENODEV))) {
            _ = try test.supervisor.launch(launch)
        }
        try test.finish()
    }
}
