import Foundation
import Glibc
import Supervisor

/// Start latency, the three side by side in one run, interleaved round by round so that any
/// load elsewhere on the machine falls on all three alike:
/// * Flotilla: launch /bin/true (busybox) with pid, mount, uts and ipc namespaces, pivot_root
///   into a busybox rootfs, a cgroup with memory, cpu and pids limits, no capabilities,
///   no_new_privs and the default seccomp filter; wait until it has exited and its cgroup is gone.
/// * `crun run` of the equivalent OCI bundle (crun creates, starts, waits and deletes).
/// * posix_spawn + waitpid of the host's /bin/true.
struct StartLatency {
    var flotilla: [Duration] = []
    var crun: [Duration] = []
    var posixSpawn: [Duration] = []

    /// The median over rounds of flotilla's time divided by the peer's in the same round.
    func pairedRatioMedian(_ peer: KeyPath<StartLatency, [Duration]>) -> Double {
        let ratios = zip(flotilla, self[keyPath: peer]).map { $0 / $1 }.sorted()
        return ratios.isEmpty ? .nan : ratios[ratios.count / 2]
    }

    static let limits = CgroupLimits(memoryMaxBytes: 64 << 20, cpuMaxMicroCores: 1_000_000, cpuWeight: 100, pidsMax: 64)

    static func measure(rounds: Int, warmup: Int, supervisor: Supervisor, rootfs: BenchRootfs) async throws
        -> StartLatency
    {
        let crunParent = "flotilla-bench-crun-\(getpid())"
        let bundle = try CrunBundle(rootfs: rootfs.path, limits: limits, cgroupParent: crunParent)
        defer { bundle.remove() }
        let stateDirectory = "/run/flotilla-bench-crun-\(getpid())"
        defer {
            try? FileManager.default.removeItem(atPath: stateDirectory)
            for hierarchy in (try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup")) ?? [] {
                rmdir("/sys/fs/cgroup/\(hierarchy)/\(crunParent)")
            }
        }
        let crunThread = try CrunThread(hidingUnifiedMount: supervisor.layout.unifiedMount)
        var result = StartLatency()
        for round in 0..<(warmup + rounds) {
            var spec = LaunchSpec(instanceID: "bench-\(getpid())-\(round)", command: ["/bin/true"],
                                  root: .directory(rootfs.path))
            spec.cgroupLimits = limits
            let start = ContinuousClock.now
            let instance = try supervisor.launch(spec)
            let exit = await instance.wait()
            let ours = ContinuousClock.now - start
            guard exit.termination == .exited(code: 0), exit.cleanupError == nil else {
                throw BenchError("flotilla round \(round): \(exit)")
            }
            let (theirs, status) = await crunThread.run(
                ["--root", stateDirectory, "run", "--bundle", bundle.directory, "bench-\(round)"])
            guard status == 0 else { throw BenchError("crun round \(round): wait status \(status)") }
            let posixStart = ContinuousClock.now
            let posixStatus = spawnAndWait("/bin/true", ["/bin/true"])
            let posix = ContinuousClock.now - posixStart
            guard posixStatus == 0 else { throw BenchError("posix_spawn round \(round): wait status \(posixStatus)") }
            if round >= warmup {
                result.flotilla.append(ours)
                result.crun.append(theirs)
                result.posixSpawn.append(posix)
            }
        }
        return result
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
