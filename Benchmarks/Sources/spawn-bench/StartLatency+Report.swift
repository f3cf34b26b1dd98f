import Foundation
import Glibc
import Supervisor

/// Start latency against crun and posix_spawn, back to back and each after a pause; prints
/// issue 4's figures and their ratios.
func measureStartLatency(rootfs: BenchRootfs, rounds: Int, warmup: Int) async throws {
    let supervisor = try Supervisor(cgroupParent: "flotilla-bench-\(getpid())")
    print("spawn-bench: \(rounds) rounds after \(warmup) warm-up, order rotated each round, "
        + "all three exec \(rootfs.truePath) (static busybox), cgroups \(supervisor.layout.mode?.rawValue ?? "none")")
    let latency = try await StartLatency.measure(rounds: rounds, warmup: warmup, supervisor: supervisor, rootfs: rootfs)
    let ours = Summary(latency.flotilla), crun = Summary(latency.crun), posix = Summary(latency.posixSpawn)
    print("\nStart latency (launch → exited → cgroup removed)")
    print("  flotilla     \(ours.text)")
    print("  crun run     \(crun.text)")
    print("  posix_spawn  \(posix.text)")
    print("  flotilla / crun        = \(format(ours.median / crun.median, decimals: 3))   (goal ≤ 0.25)")
    print("  flotilla / posix_spawn = \(format(ours.median / posix.median, decimals: 2))    (goal ≤ 3)")
    // Each round runs the three back to back: the median of the per-round ratios is less swayed
    // by load that comes and goes during the run than the ratio of the medians.
    print("  per-round ratio medians: / crun \(format(latency.pairedRatioMedian(\.crun), decimals: 3)), "
        + "/ posix_spawn \(format(latency.pairedRatioMedian(\.posixSpawn), decimals: 2))")

    let isolated = try await IsolatedStart.measure(count: 20, pause: .milliseconds(100), supervisor: supervisor, rootfs: rootfs)
    let isolatedOurs = Summary(isolated.flotilla), isolatedPosix = Summary(isolated.posixSpawn)
    print("\nIsolated starts (each after 100 ms idle, as on a real node)")
    print("  flotilla     \(isolatedOurs.text)")
    print("  posix_spawn  \(isolatedPosix.text)")
    print("  flotilla / posix_spawn = \(format(isolatedOurs.median / isolatedPosix.median, decimals: 2))")
    try supervisor.cgroups.removeParent()
}
