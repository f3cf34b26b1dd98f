import CSpawn
import Glibc

/// Launches service instances as direct children of this process, each in its namespaces and
/// cgroup, and holds them by pidfd until they exit. One per agent.
public final class Supervisor: Sendable {
    /// The host's cgroup hierarchies, as detected at start.
    public let layout: CgroupLayout
    /// The node-level parent cgroup and its instances.
    public let cgroups: CgroupTree
    let launcher: Launcher
    let watcher: ExitWatcher

    /// Becomes a child subreaper (orphans of services come back here, not to init), detects the
    /// cgroup layout, creates the parent cgroup `cgroupParent` and starts the exit watcher.
    public convenience init(cgroupParent: String = "flotilla") throws(SystemCallError) {
        try self.init(layout: try CgroupLayout.detect(), cgroupParent: cgroupParent)
    }

    /// As `init(cgroupParent:)`, with a given layout: a subset of the host's hierarchies (tests
    /// run the cgroup2-only and v1-only code on this hybrid host that way).
    public init(layout: CgroupLayout, cgroupParent: String = "flotilla", spawnOptions: UInt32 = 0)
        throws(SystemCallError)
    {
        guard fl_set_child_subreaper() == 0 else { throw .last("prctl PR_SET_CHILD_SUBREAPER") }
        self.layout = layout
        cgroups = try CgroupTree(layout: layout, parentName: cgroupParent)
        let lastCapability = Int32(try FileIO.readText("/proc/sys/kernel/cap_last_cap").trimmingNewlines) ?? 40
        let nullInput = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard nullInput >= 0 else { throw .last("open", "/dev/null") }
        let nullOutput = open("/dev/null", O_WRONLY | O_CLOEXEC)
        guard nullOutput >= 0 else {
            close(nullInput)
            throw .last("open", "/dev/null")
        }
        launcher = Launcher(lastCapability: lastCapability, nullInput: nullInput, nullOutput: nullOutput,
                            seccompFilters: SeccompFilterCache(), options: spawnOptions)
        do {
            watcher = try ExitWatcher()
        } catch {
            close(nullInput)
            close(nullOutput)
            throw error
        }
    }

    deinit {
        watcher.stop()
        close(launcher.nullInput)
        close(launcher.nullOutput)
    }

    /// Starts an instance and returns once it runs the service's program (after execve).
    /// On failure nothing is left: no process, no cgroup, no mount. `prepare` runs while the new
    /// process, its namespaces made, waits to run the service (with its pid and pidfd); what it
    /// throws fails the launch.
    public func launch(_ spec: LaunchSpec, prepare: ((_ pid: pid_t, _ pidFD: Int32) throws(SpawnError) -> Void)? = nil)
        throws(SpawnError) -> InstanceHandle
    {
        let prepared = try launcher.prepare(spec)
        let cgroup = try cgroups.beginInstance(spec.instanceID, limits: spec.cgroupLimits)
        do throws(SpawnError) {
            let directory: Int32
            do {
                directory = try cgroup.openUnifiedDirectory()
            } catch {
                throw SpawnError.cgroup(error)
            }
            defer { if directory >= 0 { close(directory) } }
            // The v1 cgroups are made while the child mounts its filesystem (fl_spawn_start).
            let (pid, pidFD) = try launcher.spawn(prepared, cgroup: cgroup, cgroupDirectory: directory) {
                () throws(SpawnError) -> [Int32] in
                do throws(SystemCallError) {
                    try cgroup.makeLegacy(limits: spec.cgroupLimits)
                    return try cgroup.openLegacyTasks()
                } catch {
                    throw SpawnError.cgroup(error)
                }
            } prepare: { pid, pidFD throws(SpawnError) in
                try prepare?(pid, pidFD)
            }
            let instance = InstanceHandle(instanceID: spec.instanceID, pid: pid, pidFD: PidFD(descriptor: pidFD),
                                          cgroup: cgroup, cgroupID: InstanceCgroup.cgroupID(ofDirectory: directory), mayLeaveOrphans: !spec.namespaces.contains(.pid))
            do {
                try watcher.watch(instance)
            } catch {
                try? cgroup.kill()
                _ = try? instance.pidFD.reap()
                throw SpawnError.launch(stage: .clone3, error)
            }
            return instance
        } catch {
            // The child, if any, is already reaped (fl_spawn_finish and fl_spawn_abort reap it on
            // failure); its cgroup is empty.
            try? cgroup.kill()
            try? cgroup.remove(deadline: ContinuousClock.now + .seconds(5))
            throw error
        }
    }

    /// How many instances are running (launched and not yet exited).
    public var runningCount: Int {
        watcher.count
    }
}
