/// One service instance's launch, resolved down to what the kernel is asked for. The Manifest's
/// service spec maps onto this (see `LaunchSpec(service:instance:)` once Manifest exists); the
/// supervisor itself knows nothing of manifests.
public struct LaunchSpec: Sendable, Hashable {
    /// The instance this process is, e.g. `web-3f2a`. Names the cgroup: letters, digits, `-_.`.
    public var instanceID: String
    /// argv. A first element without `/` is looked up in the environment's PATH (inside the root).
    public var command: [String]
    /// The environment. PATH and HOME are added when missing (HOME from /etc/passwd).
    public var environment: [String: String]
    /// Absolute, inside the root.
    public var workingDirectory: String
    /// Who the process runs as; names are resolved from the root's /etc/passwd and /etc/group.
    public var user: UserSpec
    /// The root filesystem: a directory, or the host's own (still in a private mount namespace).
    public var root: LaunchRoot
    /// Remount the root read-only once everything is mounted (rootfs mode only).
    public var readOnlyRoot: Bool
    /// Mounts in addition to the standard /proc, /dev and /sys, in order.
    public var mounts: [LaunchMount]
    /// Namespaces to create. A mount namespace is always created, whether listed or not.
    public var namespaces: NamespaceSet
    /// With `.user`: how ids inside map to ids outside. Required exactly when `.user` is present.
    public var idMapping: UserNamespaceMapping?
    /// With `.uts`: the hostname inside.
    public var hostname: String?
    /// The capabilities the process keeps, in every set (bounding, permitted, effective,
    /// inheritable, ambient). Empty by default: services run without capabilities.
    public var capabilities: Set<LinuxCapability>
    /// prctl(PR_SET_NO_NEW_PRIVS): execve can never grant more privileges.
    public var noNewPrivileges: Bool
    /// The seccomp filter.
    public var seccomp: SeccompPolicy
    /// Resource limits (setrlimit) applied before execve.
    public var resourceLimits: [ResourceLimit]
    /// cgroup limits.
    public var cgroupLimits: CgroupLimits
    /// Where standard output goes. Standard input is always /dev/null.
    public var standardOutput: OutputTarget
    /// Where standard error goes.
    public var standardError: OutputTarget
    /// How long the child may take from clone3 to execve before it is killed.
    public var startTimeout: Duration

    /// A spec with secure defaults: pid, mount, uts and ipc namespaces, no capabilities,
    /// no_new_privs, the default seccomp filter, root user, output discarded.
    public init(
        instanceID: String,
        command: [String],
        environment: [String: String] = [:],
        workingDirectory: String = "/",
        user: UserSpec = .root,
        root: LaunchRoot,
        readOnlyRoot: Bool = false,
        mounts: [LaunchMount] = [],
        namespaces: NamespaceSet = [.pid, .mount, .uts, .ipc],
        idMapping: UserNamespaceMapping? = nil,
        hostname: String? = nil,
        capabilities: Set<LinuxCapability> = [],
        noNewPrivileges: Bool = true,
        seccomp: SeccompPolicy = .defaultDenyList,
        resourceLimits: [ResourceLimit] = [],
        cgroupLimits: CgroupLimits = CgroupLimits(),
        standardOutput: OutputTarget = .null,
        standardError: OutputTarget = .null,
        startTimeout: Duration = .seconds(10)
    ) {
        self.instanceID = instanceID
        self.command = command
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.user = user
        self.root = root
        self.readOnlyRoot = readOnlyRoot
        self.mounts = mounts
        self.namespaces = namespaces
        self.idMapping = idMapping
        self.hostname = hostname
        self.capabilities = capabilities
        self.noNewPrivileges = noNewPrivileges
        self.seccomp = seccomp
        self.resourceLimits = resourceLimits
        self.cgroupLimits = cgroupLimits
        self.standardOutput = standardOutput
        self.standardError = standardError
        self.startTimeout = startTimeout
    }
}

/// The root filesystem of a service.
public enum LaunchRoot: Sendable, Hashable {
    /// The host's filesystem, seen through a private mount namespace.
    case host
    /// A directory (absolute path) that becomes `/` through pivot_root.
    case directory(String)
}

/// Who a service runs as, by name or number, as in `user: "web"` or `user: "1000:1000"`.
public struct UserSpec: Sendable, Hashable {
    /// A user name from the root's /etc/passwd, or a number.
    public var user: String
    /// A group name or number; nil: the user's primary group from /etc/passwd (0 when unknown).
    public var group: String?
    /// More groups (names or numbers), on top of the user's memberships in /etc/group.
    public var additionalGroups: [String]

    /// A user by name or number.
    public init(user: String, group: String? = nil, additionalGroups: [String] = []) {
        self.user = user
        self.group = group
        self.additionalGroups = additionalGroups
    }

    /// uid 0, gid 0.
    public static let root = UserSpec(user: "0", group: "0")
}

/// Namespaces a service gets (clone(2) CLONE_NEW* flags).
public struct NamespaceSet: OptionSet, Sendable, Hashable {
    /// The CLONE_NEW* bits.
    public let rawValue: UInt64
    /// A set from CLONE_NEW* bits.
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// CLONE_NEWPID: the service is pid 1 of its own pid namespace.
    public static let pid = NamespaceSet(rawValue: 0x2000_0000)
    /// CLONE_NEWNS: always created (see `LaunchSpec.namespaces`).
    public static let mount = NamespaceSet(rawValue: 0x0002_0000)
    /// CLONE_NEWUTS: its own hostname.
    public static let uts = NamespaceSet(rawValue: 0x0400_0000)
    /// CLONE_NEWIPC: its own System V IPC and POSIX message queues.
    public static let ipc = NamespaceSet(rawValue: 0x0800_0000)
    /// CLONE_NEWNET: its own network stack (loopback only until something is added).
    public static let network = NamespaceSet(rawValue: 0x4000_0000)
    /// CLONE_NEWUSER: its own ids, mapped by `LaunchSpec.idMapping`.
    public static let user = NamespaceSet(rawValue: 0x1000_0000)
    /// CLONE_NEWCGROUP: /proc/self/cgroup shows its own cgroup as `/`.
    public static let cgroup = NamespaceSet(rawValue: 0x0200_0000)
}

/// An extra mount inside the service's root.
public struct LaunchMount: Sendable, Hashable {
    /// What is mounted.
    public enum Kind: Sendable, Hashable {
        /// A host path (file or directory), with its submounts when recursive.
        case bind(source: String, recursive: Bool)
        /// A fresh tmpfs.
        case tmpfs(sizeBytes: UInt64?, mode: UInt32)
    }

    /// What is mounted.
    public var kind: Kind
    /// Absolute path inside the root; created when missing.
    public var target: String
    /// Mounted read-only.
    public var readOnly: Bool

    /// A mount of `kind` at `target`.
    public init(kind: Kind, target: String, readOnly: Bool = false) {
        self.kind = kind
        self.target = target
        self.readOnly = readOnly
    }

    /// A bind mount of a host path.
    public static func bind(_ source: String, at target: String, readOnly: Bool = false, recursive: Bool = true)
        -> LaunchMount
    {
        LaunchMount(kind: .bind(source: source, recursive: recursive), target: target, readOnly: readOnly)
    }

    /// A tmpfs.
    public static func tmpfs(at target: String, sizeBytes: UInt64? = nil, mode: UInt32 = 0o755) -> LaunchMount {
        LaunchMount(kind: .tmpfs(sizeBytes: sizeBytes, mode: mode), target: target)
    }
}

/// A setrlimit(2) limit.
public struct ResourceLimit: Sendable, Hashable {
    /// RLIMIT_* resources.
    public enum Resource: Int32, Sendable, Hashable, CaseIterable {
        case cpu = 0, fileSize, data, stack, core, residentSet, processes, openFiles, lockedMemory, addressSpace
        case locks, pendingSignals, messageQueueBytes, nice, realtimePriority, realtimeTimeout

        /// The kernel's name, e.g. `RLIMIT_NOFILE`.
        public var kernelName: String {
            let names = [
                "CPU", "FSIZE", "DATA", "STACK", "CORE", "RSS", "NPROC", "NOFILE", "MEMLOCK", "AS", "LOCKS",
                "SIGPENDING", "MSGQUEUE", "NICE", "RTPRIO", "RTTIME",
            ]
            return "RLIMIT_" + names[Int(rawValue)]
        }
    }

    /// Which limit.
    public var resource: Resource
    /// The soft limit; `UInt64.max` is unlimited.
    public var soft: UInt64
    /// The hard limit; `UInt64.max` is unlimited.
    public var hard: UInt64

    /// A limit with its soft and hard values.
    public init(_ resource: Resource, soft: UInt64, hard: UInt64) {
        self.resource = resource
        self.soft = soft
        self.hard = hard
    }
}

/// The seccomp filter a service runs under.
public enum SeccompPolicy: Sendable, Hashable {
    /// Docker's defaults expressed as a deny-list (see `SeccompFilter`).
    case defaultDenyList
    /// No filter.
    case unconfined
}

/// Where a standard stream of the service goes.
public enum OutputTarget: Sendable, Hashable {
    /// /dev/null.
    case null
    /// The supervisor's own descriptor of the same number.
    case inherit
    /// A descriptor of the caller, kept open by the caller until `launch` returns.
    case fileDescriptor(Int32)
}
