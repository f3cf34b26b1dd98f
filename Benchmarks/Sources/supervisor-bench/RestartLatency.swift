import Foundation
import Manifest
import Supervisor

/// Crash-to-running latency of a restart with zero backoff, against the bare launcher's spawn
/// latency in the same run. `/bin/true` exits at once, so a supervised instance with
/// `initialDelay: 0` restarts in a tight loop; the gap between consecutive launches is one
/// cycle (spawn + run + exit + cleanup + supervision). The bare cycle (launch, then wait for the
/// exit and cleanup) has all of that but supervision, so their difference is what restarting
/// adds on top of spawning.
enum RestartLatency {
    static func run(rootfs: BenchRootfs, cycles: Int, forwarding: Forwarding) async throws {
        let bench = try BenchNode(forwarding)
        let spec = LaunchSpec(instanceID: "bench-true", command: ["/bin/true"], root: .directory(rootfs.path))
        var spawn: [Duration] = []
        var bare: [Duration] = []
        for index in 0..<cycles {
            var launch = spec
            launch.instanceID = "bench-bare-\(index)"
            let started = ContinuousClock.now
            let handle = try bench.node.supervisor.launch(launch)
            let running = ContinuousClock.now
            _ = await handle.wait()
            spawn.append(running - started)
            bare.append(ContinuousClock.now - started)
        }

        let policy = SupervisionPolicy(restart: RestartPolicy(initialDelay: .zero, maxDelay: .zero, maxRestarts: 1_000_000,
                                                              window: .seconds(1)))
        let instance = try await bench.node.supervise(SupervisedService(serviceName: "bench", launch: spec, policy: policy))
        _ = try await instance.wait(timeout: .seconds(600)) { $0.launchCount >= cycles }
        _ = await instance.stop()
        var cycle: [Duration] = []
        var exitToLaunch: [Duration] = []
        var lastLaunch: BootInstant?
        var lastExit: BootInstant?
        for event in bench.events.all {
            switch event.kind {
            case .launched:
                if let lastLaunch { cycle.append(event.at - lastLaunch) }
                if let lastExit { exitToLaunch.append(event.at - lastExit) }
                lastLaunch = event.at
                lastExit = nil
            case .exited:
                lastExit = event.at
            default:
                break
            }
        }
        await bench.finish()

        let spawnMedian = median(spawn)
        let bareMedian = median(bare)
        let cycleMedian = median(cycle)
        print("== Restart latency (zero backoff), \(cycles) bare cycles, \(cycle.count) supervised restarts, \(forwarding.label)")
        print("  spawn latency (launch until execve):            \(milliseconds(spawnMedian))")
        print("  bare cycle (launch, exit, cgroup cleanup):      \(milliseconds(bareMedian))")
        print("  supervised restart cycle (launch to launch):    \(milliseconds(cycleMedian))")
        print("  exit noticed to relaunched (driver only):       \(milliseconds(median(exitToLaunch)))")
        print("  crash-to-running above spawn latency:           \(milliseconds(cycleMedian - bareMedian))  (goal <= 2 ms)")
    }
}
