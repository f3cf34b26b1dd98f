import Foundation
import Glibc
import Supervisor

/// Many long-running services (busybox `sleep`) under one supervisor: what each costs the
/// supervisor in memory, whether any process besides the services exists, and what the idle
/// supervisor burns in CPU.
struct Density {
    var services: Int
    var launchTime: Duration
    /// Median launch time of the first and of the last tenth of the services.
    var firstTenthLaunch: Duration
    var lastTenthLaunch: Duration
    var rssBeforeKiB: Int
    var rssAfterKiB: Int
    var ownChildren: Int
    var childrenNotDirect: Int
    var systemProcessDelta: Int
    var threads: Int
    var idleWindow: Duration
    var idleCPU: Duration
    var teardownTime: Duration
    var cgroupsLeft: Int

    static func measure(count: Int, supervisor: Supervisor, rootfs: BenchRootfs, idleWindow: Duration) async throws
        -> Density
    {
        let rssBefore = statusField("VmRSS")
        let processesBefore = systemProcessCount()
        let start = ContinuousClock.now
        var instances: [InstanceHandle] = []
        var launchTimes: [Duration] = []
        instances.reserveCapacity(count)
        for index in 0..<count {
            var spec = LaunchSpec(instanceID: "density-\(getpid())-\(index)", command: ["/bin/sleep", "100000"],
                                  root: .directory(rootfs.path))
            spec.cgroupLimits = StartLatency.limits
            let launchStart = ContinuousClock.now
            instances.append(try supervisor.launch(spec))
            launchTimes.append(ContinuousClock.now - launchStart)
        }
        let tenth = max(count / 10, 1)
        let firstTenth = launchTimes.prefix(tenth).sorted()[tenth / 2]
        let lastTenth = launchTimes.suffix(tenth).sorted()[tenth / 2]
        let launchTime = ContinuousClock.now - start
        try await Task.sleep(for: .seconds(1))
        let children = Set(directChildren())
        let services = Set(instances.map(\.pid))
        let processesAfter = systemProcessCount()
        let rssAfter = statusField("VmRSS")
        let threads = statusField("Threads")

        let cpuBefore = processCPUTime()
        try await Task.sleep(for: idleWindow)
        let idleCPU = processCPUTime() - cpuBefore

        let teardownStart = ContinuousClock.now
        for instance in instances { try instance.kill() }
        for instance in instances { _ = await instance.wait() }
        let teardownTime = ContinuousClock.now - teardownStart
        let left = supervisor.cgroups.parentDirectories.reduce(0) { total, directory in
            total + ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("density-") }.count
        }
        return Density(
            services: count, launchTime: launchTime, firstTenthLaunch: firstTenth, lastTenthLaunch: lastTenth,
            rssBeforeKiB: rssBefore, rssAfterKiB: rssAfter,
            ownChildren: children.count, childrenNotDirect: services.subtracting(children).count,
            systemProcessDelta: processesAfter - processesBefore, threads: threads, idleWindow: idleWindow,
            idleCPU: idleCPU, teardownTime: teardownTime, cgroupsLeft: left)
    }

    /// A number field of /proc/self/status (VmRSS is in kB).
    static func statusField(_ name: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" })[1]) ?? -1
        }
        return -1
    }

    static func systemProcessCount() -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).filter { Int($0) != nil }.count
    }

    /// Every process whose parent is this one (field 4 of /proc/PID/stat).
    static func directChildren() -> [pid_t] {
        let me = getpid()
        return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
            guard let pid = pid_t(entry),
                let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let afterName = stat.split(separator: ")").last
            else { return nil }
            let fields = afterName.split(separator: " ")
            return fields.count > 1 && pid_t(fields[1]) == me ? pid : nil
        }
    }

    static func processCPUTime() -> Duration {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return .seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + .microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
    }
}
