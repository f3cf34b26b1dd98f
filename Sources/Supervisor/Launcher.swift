import CSpawn
import Glibc
import Manifest

/// A launch with everything resolved that the child cannot work out itself: ids from the root's
/// passwd files, the environment, the execve candidates, the mount plan, the seccomp program.
struct PreparedLaunch: Sendable {
    var spec: LaunchSpec
    var identity: ResolvedIdentity
    var environment: [String]
    var executablePaths: [String]
    var plan: MountPlan
    var seccompProgram: [UInt8]
}

/// Turns a `LaunchSpec` into an `fl_spawn` request and its failures into exact messages.
struct Launcher: Sendable {
    /// /proc/sys/kernel/cap_last_cap: the highest capability this kernel knows.
    let lastCapability: Int32
    /// /dev/null, opened once: the service's stdin, and stdout/stderr when discarded.
    let nullInput: Int32
    let nullOutput: Int32
    let seccompFilters: SeccompFilterCache
    let passwdDatabases = PasswdDatabaseCache()
    /// `fl_spawn_option` flags (tests use FL_SPAWN_NO_SHARED_VM to cover the fork-like path).
    var options: UInt32 = 0

    /// The search path used when the environment has none (the one Docker and runc set).
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Resolves and checks a spec; nothing is created yet, so a failure here leaves nothing behind.
    func prepare(_ spec: LaunchSpec) throws(SpawnError) -> PreparedLaunch {
        let problems = spec.problems()
        guard problems.isEmpty else { throw .invalidSpec(problems) }
        let rootPath: String
        switch spec.root {
        case .host: rootPath = "/"
        case .directory(let path): rootPath = path
        }
        let identity = try PasswdDatabase.read(root: rootPath, cache: passwdDatabases).resolve(spec.user, source: rootPath == "/" ? "" : rootPath)
        var environment = spec.environment
        if environment["PATH"] == nil { environment["PATH"] = Self.defaultPath }
        if environment["HOME"] == nil { environment["HOME"] = identity.home }
        let program = spec.command[0]
        let executablePaths: [String]
        if program.utf8.contains(UInt8(ascii: "/")) {
            executablePaths = [program]
        } else {
            let path = environment["PATH"] ?? Self.defaultPath
            executablePaths = path.split(separator: ":").map { "\($0)/\(program)" }
        }
        let plan = MountPlan(spec: spec) { source in
            var info = stat()
            return stat(source, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
        }
        let seccompProgram = try seccompFilters.program(for: spec.seccomp, keeping: spec.capabilities)
        return PreparedLaunch(
            spec: spec, identity: identity,
            environment: environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
            executablePaths: executablePaths, plan: plan, seccompProgram: seccompProgram)
    }

    /// Clones the service (into `cgroupDirectory`, a cgroup2 directory, with CLONE_INTO_CGROUP
    /// unless it is -1), then calls `placement` while the child sets up its namespaces and
    /// filesystem: it returns the open `tasks` files of the v1 cgroups (which the launch closes),
    /// and the child joins each before it runs anything of the service. Returns once it has
    /// called execve.
    /// With `join` (exec checks), the process creates no namespaces and sets up no filesystem: it
    /// enters those of the process `join.pidFD` refers to, `join.namespaces` plus its mount
    /// namespace, and runs there (see `join_flags` in fl_spawn.h).
    func spawn(_ launch: PreparedLaunch, cgroup instanceCgroup: InstanceCgroup, cgroupDirectory: Int32,
               join: (pidFD: Int32, namespaces: NamespaceSet)? = nil,
               placement: () throws(SpawnError) -> [Int32],
               prepare: ((_ pid: pid_t, _ pidFD: Int32) throws(SpawnError) -> Void)? = nil)
        throws(SpawnError) -> (pid: pid_t, pidFD: Int32)
    {
        let spec = launch.spec
        let arena = SpawnArena()
        var request = fl_spawn_request()
        request.clone_flags = spec.namespaces.union(.mount).subtracting(.cgroup).rawValue
        request.options = options
        request.unshare_cgroup_ns = spec.namespaces.contains(.cgroup) ? 1 : 0
        let (seconds, attoseconds) = spec.startTimeout.components
        // At least 1 ms: the C side reads 0 as "no timeout", and validation has refused <= 0.
        request.timeout_ms = max(1, Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        request.cgroup_fd = cgroupDirectory
        request.cap_last = lastCapability
        if let mapping = spec.idMapping {
            request.uid_map = arena.string(mapping.uids.mapFileText)
            request.gid_map = arena.string(mapping.gids.mapFileText)
        }
        if case .directory(let path) = spec.root { request.rootfs = arena.string(path) }
        let mounts = launch.plan.steps.map { cMount($0, arena: arena) }
        request.mounts = UnsafePointer(arena.array(mounts))
        request.mount_count = Int32(mounts.count)
        request.mount_fds = arena.array([Int32](repeating: -1, count: mounts.count))
        request.readonly_root = spec.readOnlyRoot ? 1 : 0
        request.hostname = arena.optionalString(spec.hostname)
        let limits = spec.resourceLimits.map {
            fl_rlimit(resource: $0.resource.rawValue, reserved: 0, soft: $0.soft, hard: $0.hard)
        }
        request.rlimits = UnsafePointer(arena.array(limits))
        request.rlimit_count = Int32(limits.count)
        request.uid = launch.identity.uid
        request.gid = launch.identity.gid
        request.groups = UnsafePointer(arena.array(launch.identity.groups))
        request.group_count = Int32(launch.identity.groups.count)
        let capabilities = spec.capabilities.mask
        request.cap_bounding = capabilities
        request.cap_effective = capabilities
        request.cap_permitted = capabilities
        request.cap_inheritable = capabilities
        request.cap_ambient = capabilities
        request.no_new_privs = spec.noNewPrivileges ? 1 : 0
        // struct sock_filter is 8 bytes: code (2), jt (1), jf (1), k (4).
        request.seccomp_count = Int32(launch.seccompProgram.count / 8)
        request.seccomp_filter = launch.seccompProgram.isEmpty ? nil : arena.bytes(launch.seccompProgram)
        request.cwd = arena.string(spec.workingDirectory)
        let descriptors: [(from: Int32, to: Int32)] = [
            (nullInput, 0), (descriptor(for: spec.standardOutput, number: 1), 1),
            (descriptor(for: spec.standardError, number: 2), 2),
        ]
        request.fd_count = Int32(descriptors.count)
        request.fd_from = UnsafePointer(arena.array(descriptors.map(\.from)))
        request.fd_to = UnsafePointer(arena.array(descriptors.map(\.to)))
        if let join {
            request.clone_flags = 0
            request.unshare_cgroup_ns = 0
            request.mount_count = 0
            request.readonly_root = 0
            request.hostname = nil
            request.join_flags = join.namespaces.union(.mount).rawValue
            request.join_pidfd = join.pidFD
        }
        request.argv = arena.stringArray(spec.command)
        request.envp = arena.stringArray(launch.environment)
        request.exec_paths = arena.stringArray(launch.executablePaths)
        request.exec_path_count = Int32(launch.executablePaths.count)

        // The child reads the request until execve, after fl_spawn_start has returned: it lives
        // in the arena, which lives until fl_spawn_finish or fl_spawn_abort has returned.
        let stableRequest = arena.array([request])
        var result = fl_spawn_result()
        return try withExtendedLifetime(arena) { () throws(SpawnError) -> (pid: pid_t, pidFD: Int32) in
            guard let pending = fl_spawn_start(stableRequest, &result) else {
                throw failure(result, launch: launch, cgroup: instanceCgroup)
            }
            let tasks: [Int32]
            do throws(SpawnError) {
                tasks = try placement()
            } catch {
                fl_spawn_abort(pending)
                throw error
            }
            if let prepare {
                do throws(SpawnError) {
                    try prepare(pid_t(fl_spawn_pending_pid(pending)), fl_spawn_pending_pidfd(pending))
                } catch {
                    for fd in tasks { close(fd) }
                    fl_spawn_abort(pending)
                    throw error
                }
            }
            defer { for fd in tasks { close(fd) } }
            let rc = tasks.withUnsafeBufferPointer { fl_spawn_finish(pending, $0.baseAddress, Int32($0.count), &result) }
            guard rc == 0 else { throw failure(result, launch: launch, cgroup: instanceCgroup) }
            return (result.pid, result.pidfd)
        }
    }

    private func failure(_ result: fl_spawn_result, launch: PreparedLaunch, cgroup: InstanceCgroup) -> SpawnError {
        .launch(stage: SpawnStage(rawValue: result.failure.stage) ?? .clone3,
                failureError(result.failure, launch: launch, cgroup: cgroup))
    }

    private func descriptor(for target: OutputTarget, number: Int32) -> Int32 {
        switch target {
        case .null: return nullOutput
        case .inherit: return number
        case .fileDescriptor(let fd): return fd
        }
    }

    private func cMount(_ step: MountPlan.Step, arena: SpawnArena) -> fl_mount {
        var mount = fl_mount()
        mount.target = arena.string(step.target)
        switch step.kind {
        case .filesystem(let source, let type, let flags, let data):
            mount.kind = Int32(FL_MOUNT_FILESYSTEM.rawValue)
            mount.source = arena.string(source)
            mount.fstype = arena.string(type)
            mount.flags = flags
            mount.data = arena.optionalString(data)
        case .bind(let source, let recursive, let attributes, let targetIsFile):
            mount.kind = Int32(FL_MOUNT_BIND.rawValue)
            mount.source = arena.string(source)
            mount.recursive = recursive ? 1 : 0
            mount.attr_set = attributes
            mount.target_is_file = targetIsFile ? 1 : 0
        case .device(let major, let minor):
            mount.kind = Int32(FL_MOUNT_DEVICE.rawValue)
            mount.mode = 0o666
            mount.device = Self.makeDevice(major: major, minor: minor)
        case .symlink(let destination):
            mount.kind = Int32(FL_MOUNT_SYMLINK.rawValue)
            mount.source = arena.string(destination)
        case .readOnly:
            mount.kind = Int32(FL_MOUNT_READONLY.rawValue)
        case .mask:
            mount.kind = Int32(FL_MOUNT_MASK.rawValue)
        }
        return mount
    }

    /// glibc's makedev: the 64-bit dev_t layout (sys/sysmacros.h).
    static func makeDevice(major: UInt32, minor: UInt32) -> UInt64 {
        let major = UInt64(major), minor = UInt64(minor)
        return ((major & 0xffff_f000) << 32) | ((major & 0x0000_0fff) << 8) | ((minor & 0xffff_ff00) << 12)
            | (minor & 0x0000_00ff)
    }

    /// The message for a failed stage: the call as crun would name it and the path it was about.
    func failureError(_ failure: fl_spawn_failure, launch: PreparedLaunch, cgroup: InstanceCgroup) -> SystemCallError {
        let spec = launch.spec
        let errno = failure.error
        let index = Int(failure.index)
        let rootfs: String
        if case .directory(let path) = spec.root { rootfs = path } else { rootfs = "/" }
        func step() -> MountPlan.Step? { launch.plan.steps.indices.contains(index) ? launch.plan.steps[index] : nil }
        func capabilityName() -> String { LinuxCapability(rawValue: index)?.name ?? "capability \(index)" }
        let error = { (call: String, path: String?) in SystemCallError(call: call, path: path, errno: errno) }
        switch SpawnStage(rawValue: failure.stage) {
        case .pipe: return error("pipe2", nil)
        case .stack: return error("mmap", "child stack")
        case .clone3: return error("clone3", nil)
        case .gidMap: return error("write", "/proc/\(index)/gid_map")
        case .uidMap: return error("write", "/proc/\(index)/uid_map")
        case .release: return error("send", "release socket")
        case .statusRead:
            if errno == ETIMEDOUT { return error("execve not reached within \(DurationText.formatRounded(spec.startTimeout))", nil) }
            return error("read", "status pipe")
        case .waitRelease: return error("read", "release socket")
        case .userNamespaceRoot: return error("setresuid", "0 (root of the user namespace)")
        case .cgroupJoin:
            // The order of InstanceCgroup.openLegacyTasks.
            let paths = cgroup.legacyDirectories.map { $0 + "/tasks" }
            return error("write", paths.indices.contains(index) ? paths[index] : "tasks")
        case .cgroupNamespace: return error("unshare", "CLONE_NEWCGROUP")
        case .signals: return error("rt_sigaction", "signal \(index)")
        case .mountPrivate: return error("mount --make-rprivate", "/")
        case .rootfsBind: return error("mount --rbind", rootfs)
        case .rootfsChdir: return error("chdir", rootfs)
        case .openRoot: return error("open", "/")
        case .openTree, .mountSetattr:
            let call = SpawnStage(rawValue: failure.stage) == .openTree ? "open_tree" : "mount_setattr"
            if case .bind(let source, _, _, _) = step()?.kind { return error(call, source) }
            return error(call, nil)
        case .pivotRoot: return error("pivot_root", rootfs)
        case .mkdir: return error("mkdir", step()?.target)
        case .mount:
            guard let step = step() else { return error("mount", nil) }
            switch step.kind {
            case .filesystem(_, let type, _, _): return error("mount \(type)", step.target)
            case .bind: return error("move_mount", step.target)
            case .device: return error("mknod", step.target)
            case .symlink: return error("symlink", step.target)
            case .readOnly: return error("remount read-only", step.target)
            case .mask: return error("mask", step.target)
            }
        case .detachOldRoot: return error("umount2 MNT_DETACH", "old root")
        case .readonlyRoot: return error("remount read-only", "/")
        case .hostname: return error("sethostname", spec.hostname)
        case .rlimit:
            let resource = spec.resourceLimits.indices.contains(index) ? spec.resourceLimits[index].resource : nil
            return error("setrlimit", resource?.kernelName)
        case .capabilityBoundingSet: return error("prctl PR_CAPBSET_DROP", capabilityName())
        case .keepCapabilities: return error("prctl PR_SET_KEEPCAPS", nil)
        case .setgroups: return error("setgroups", launch.identity.groups.map(String.init).joined(separator: ","))
        case .setresgid: return error("setresgid", "\(launch.identity.gid)")
        case .setresuid: return error("setresuid", "\(launch.identity.uid)")
        case .capset: return error("capset", nil)
        case .ambientCapabilities: return error("prctl PR_CAP_AMBIENT_RAISE", index >= 0 ? capabilityName() : nil)
        case .noNewPrivileges: return error("prctl PR_SET_NO_NEW_PRIVS", nil)
        case .seccomp: return error("seccomp SECCOMP_SET_MODE_FILTER", nil)
        case .chdir: return error("chdir", spec.workingDirectory)
        case .fileDescriptors: return error("dup3", index >= 0 ? "fd \(index)" : nil)
        case .joinNamespaces: return error("setns", "the service's namespaces")
        case .joinFork: return error("fork", "into the joined pid namespace")
        case .loopback:
            let calls = ["socket AF_INET", "ioctl SIOCGIFFLAGS", "ioctl SIOCSIFFLAGS IFF_UP"]
            return error(calls.indices.contains(index) ? calls[index] : "ioctl", "lo")
        case .execve:
            // After a PATH search that found nothing, name the command rather than its last candidate.
            if launch.executablePaths.count > 1 && errno == ENOENT { return error("execve", spec.command[0]) }
            let paths = launch.executablePaths
            return error("execve", paths.indices.contains(index) ? paths[index] : spec.command[0])
        case nil: return error("launch stage \(failure.stage)", nil)
        }
    }
}
