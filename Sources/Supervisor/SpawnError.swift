/// Why a service could not be started. Every case reads as one line that says what failed;
/// `description` is the message an operator sees.
public enum SpawnError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The launch spec cannot be honoured (all problems found, one per line).
    case invalidSpec([String])
    /// A user or group name is not in the rootfs's /etc/passwd or /etc/group.
    case unknownIdentity(String)
    /// Creating, limiting, joining or removing the instance's cgroup failed.
    case cgroup(SystemCallError)
    /// Compiling the seccomp filter failed (libseccomp's call and errno).
    case seccomp(SystemCallError)
    /// A step of the launch itself failed, in the parent or in the child before execve.
    case launch(stage: SpawnStage, SystemCallError)
    /// Preparing the new process's surroundings before it runs failed (a listener in its
    /// network namespace), with what and why.
    case preparation(String)

    /// The one-line message, e.g. `pivot_root "/srv/web/rootfs": Invalid argument`.
    public var description: String {
        switch self {
        case .invalidSpec(let problems): return "invalid launch spec: " + problems.joined(separator: "; ")
        case .unknownIdentity(let message): return message
        case .cgroup(let error), .seccomp(let error), .launch(_, let error): return error.description
        case .preparation(let message): return message
        }
    }
}

/// The steps of a launch, in the order they run (parent steps first, then the child's).
/// Mirrors `enum fl_stage` in CSpawn.
public enum SpawnStage: Int32, Sendable, Hashable, CaseIterable {
    case pipe = 1, stack, clone3, gidMap, uidMap, release, statusRead
    case cgroupJoin, waitRelease, userNamespaceRoot, cgroupNamespace, signals, mountPrivate, rootfsBind, rootfsChdir, openRoot
    case openTree, mountSetattr, pivotRoot, mkdir, mount, detachOldRoot, readonlyRoot, hostname, rlimit
    case capabilityBoundingSet, keepCapabilities, setgroups, setresgid, setresuid, capset, ambientCapabilities
    case noNewPrivileges, seccomp, chdir, fileDescriptors, execve
    /// Exec checks: entering the service's namespaces, and the fork into its pid namespace.
    case joinNamespaces, joinFork
    /// Bringing up `lo` in a new network namespace (after the cgroup namespace in the child).
    case loopback
}
