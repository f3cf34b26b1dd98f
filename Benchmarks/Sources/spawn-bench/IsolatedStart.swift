import Glibc
import Supervisor

/// Start latency of a launch on an otherwise idle supervisor: each after a pause, as starts come
/// on a real node (seconds apart, not back to back). Kernel state that back-to-back rounds keep
/// warm has gone cold by then, e.g. the RCU-synchronised cgroup_threadgroup_rwsem, whose write
/// lock (taken for any pid written to a v1 cgroup.procs) then costs a full grace period.
/// posix_spawn runs the same static busybox `true` as the launch.
struct IsolatedStart {
    var flotilla: [Duration] = []
    var posixSpawn: [Duration] = []

    static func measure(count: Int, pause: Duration, supervisor: Supervisor, rootfs: BenchRootfs) async throws
        -> IsolatedStart
    {
        var result = IsolatedStart()
        for round in 0..<count {
            try await Task.sleep(for: pause)
            var spec = LaunchSpec(instanceID: "isolated-\(getpid())-\(round)", command: ["/bin/true"],
                                  root: .directory(rootfs.path))
            spec.cgroupLimits = StartLatency.limits
            let start = ContinuousClock.now
            let exit = try await supervisor.launch(spec).wait()
            result.flotilla.append(ContinuousClock.now - start)
            guard exit.termination == .exited(code: 0), exit.cleanupError == nil else {
                throw BenchError("isolated round \(round): \(exit)")
            }
            try await Task.sleep(for: pause)
            let posixStart = ContinuousClock.now
            guard spawnAndWait(rootfs.truePath, ["/bin/true"]) == 0 else { throw BenchError("posix_spawn round \(round)") }
            result.posixSpawn.append(ContinuousClock.now - posixStart)
        }
        return result
    }
}
