import Foundation
import Glibc
import Supervisor

// spawn-bench [--rounds N] [--warmup N] [--services N] [--idle-seconds N] [--skip-density]
let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, default value: Int, in arguments: [String]) -> Int {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let number = Int(arguments[index + 1])
    else { return value }
    return number
}
let rounds = option("--rounds", default: 300, in: arguments)
let warmup = option("--warmup", default: 20, in: arguments)
let services = option("--services", default: 1000, in: arguments)
let idleSeconds = option("--idle-seconds", default: 10, in: arguments)
let skipDensity = arguments.contains("--skip-density")

guard getuid() == 0 else {
    print("spawn-bench needs root (namespaces, cgroups, crun)")
    exit(2)
}

do {
    let rootfs = try BenchRootfs()
    let supervisor = try Supervisor(cgroupParent: "flotilla-bench-\(getpid())")
    print("spawn-bench: \(rounds) rounds after \(warmup) warm-up, cgroups \(supervisor.layout.mode?.rawValue ?? "none")")
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

    if !skipDensity {
        let density = try await Density.measure(count: services, supervisor: supervisor, rootfs: rootfs,
                                                idleWindow: .seconds(idleSeconds))
        let perServiceKiB = Double(density.rssAfterKiB - density.rssBeforeKiB) / Double(density.services)
        let idleFraction = Double(density.idleCPU.components.seconds) + Double(density.idleCPU.components.attoseconds) / 1e18
        print("\nDensity: \(density.services) busybox sleep services")
        print("  launched in \(density.launchTime); median launch: first tenth \(density.firstTenthLaunch), last tenth \(density.lastTenthLaunch)")
        print("  supervisor RSS \(density.rssBeforeKiB) KiB → \(density.rssAfterKiB) KiB: \(format(perServiceKiB, decimals: 1)) KiB per service (goal ≤ 64)")
        print("  supervisor's children \(density.ownChildren), services not among them \(density.childrenNotDirect), "
            + "processes on the host +\(density.systemProcessDelta): \(density.ownChildren - density.services) besides the services (goal 0)")
        print("  supervisor threads \(density.threads)")
        print("  idle CPU over \(density.idleWindow): \(density.idleCPU) (\(format(idleFraction / Double(idleSeconds) * 100, decimals: 3)) % of one core)")
        print("  teardown (kill all, wait, cgroups removed) \(density.teardownTime), cgroups left \(density.cgroupsLeft)")
    }
    try supervisor.cgroups.removeParent()
} catch {
    print("spawn-bench failed: \(error)")
    exit(1)
}
