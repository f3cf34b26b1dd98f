import Foundation
import Glibc
import Supervisor

/// Start latency, the three side by side in one run, interleaved round by round so that any
/// load elsewhere on the machine falls on all three alike. All three exec the same binary, the
/// rootfs's static busybox `true`:
/// * Flotilla: launch /bin/true with pid, mount, uts and ipc namespaces, pivot_root into the
///   busybox rootfs, a cgroup with memory, cpu and pids limits, no capabilities, no_new_privs
///   and the default seccomp filter; wait until it has exited and its cgroup is gone.
/// * `crun run` of the equivalent OCI bundle (crun creates, starts, waits and deletes).
/// * posix_spawn + waitpid of that same busybox `true`, seen from the host.
///
/// Round i starts with contender i mod 3 (`Contender.order`): none of them always runs first,
/// right after the previous round's last, or always last, when caches are warmest.
struct StartLatency {
    var flotilla: [Duration] = []
    var crun: [Duration] = []
    var posixSpawn: [Duration] = []

    /// The three, in the order they run in round 0.
    enum Contender: Int, CaseIterable {
        case flotilla, crun, posixSpawn

        /// The order of round `round`: the list rotated by `round` places.
        static func order(round: Int) -> [Contender] {
            let all = allCases
            return all.indices.map { all[(round + $0) % all.count] }
        }
    }

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
            for contender in Contender.order(round: round) {
                let took: Duration
                switch contender {
                case .flotilla:
                    took = try await launchFlotilla(round: round, supervisor: supervisor, rootfs: rootfs)
                case .crun:
                    let (theirs, status) = await crunThread.run(
                        ["--root", stateDirectory, "run", "--bundle", bundle.directory, "bench-\(round)"])
                    guard status == 0 else { throw BenchError("crun round \(round): wait status \(status)") }
                    took = theirs
                case .posixSpawn:
                    let start = ContinuousClock.now
                    let status = spawnAndWait(rootfs.truePath, ["/bin/true"])
                    took = ContinuousClock.now - start
                    guard status == 0 else { throw BenchError("posix_spawn round \(round): wait status \(status)") }
                }
                guard round >= warmup else { continue }
                switch contender {
                case .flotilla: result.flotilla.append(took)
                case .crun: result.crun.append(took)
                case .posixSpawn: result.posixSpawn.append(took)
                }
            }
        }
        return result
    }

    /// One launch of busybox `true` until it has exited and its cgroup is removed.
    static func launchFlotilla(round: Int, supervisor: Supervisor, rootfs: BenchRootfs) async throws -> Duration {
        var spec = LaunchSpec(instanceID: "bench-\(getpid())-\(round)", command: ["/bin/true"],
                              root: .directory(rootfs.path))
        spec.cgroupLimits = limits
        let start = ContinuousClock.now
        let instance = try supervisor.launch(spec)
        let exit = await instance.wait()
        let took = ContinuousClock.now - start
        guard exit.termination == .exited(code: 0), exit.cleanupError == nil else {
            throw BenchError("flotilla round \(round): \(exit)")
        }
        return took
    }
}

struct BenchError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
