import Manifest

/// What the node knows about one instance besides its service's spec.
public struct InstanceFacts: Sendable, Hashable {
    /// The instance's id (names its cgroup; the default hostname).
    public var instanceID: String
    /// Port numbers assigned to the service's dynamic ports, by port name.
    public var assignedPorts: [String: Int]
    /// Environment the node adds (NOTIFY_SOCKET and the like); wins over the manifest's.
    public var environment: [String: String]
    /// For a service with an image: the instance's root and the image's defaults.
    public var image: ImageRootfs?

    /// Facts about one instance.
    public init(instanceID: String, assignedPorts: [String: Int] = [:], environment: [String: String] = [:], image: ImageRootfs? = nil) {
        self.instanceID = instanceID
        self.assignedPorts = assignedPorts
        self.environment = environment
        self.image = image
    }
}

/// An instance's root filesystem made from an image, and what the image's config sets: the
/// defaults of what the manifest leaves out.
public struct ImageRootfs: Sendable, Hashable {
    /// The instance's mounted root (an overlay of the image's layers).
    public var rootfs: String
    public var entrypoint: [String]
    public var cmd: [String]
    /// The config's `Env`, in order; a later entry wins, as in Docker.
    public var environment: [String]
    public var workingDirectory: String?
    /// The config's `User`: `user`, `uid`, `user:group` or `uid:gid`.
    public var user: String?

    public init(rootfs: String, entrypoint: [String] = [], cmd: [String] = [], environment: [String] = [], workingDirectory: String? = nil, user: String? = nil) {
        self.rootfs = rootfs
        self.entrypoint = entrypoint
        self.cmd = cmd
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.user = user
    }

    /// What runs when the manifest has no command: Docker's rule, entrypoint then cmd.
    var command: [String] { entrypoint + cmd }

    /// The user and group of the config's `User`, empty parts meaning "not set".
    var userAndGroup: (user: String, group: String?)? {
        guard let user, !user.isEmpty else { return nil }
        let parts = user.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        return (parts[0].isEmpty ? "0" : parts[0], parts.count == 2 && !parts[1].isEmpty ? parts[1] : nil)
    }
}

extension LaunchSpec {
    /// The launch of one instance of a manifest's service. User and group names stay names here:
    /// the supervisor resolves them from the root filesystem's /etc/passwd and /etc/group at
    /// launch. Output is discarded until logging is wired.
    public init(service: Service, instance: InstanceFacts) {
        var environment: [String: String] = [:]
        for entry in instance.image?.environment ?? [] {
            let parts = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            if parts.count == 2, !parts[0].isEmpty { environment[String(parts[0])] = String(parts[1]) }
        }
        for (key, value) in service.env { environment[key] = value }
        for port in service.network.ports {
            if let number = instance.assignedPorts[port.name] ?? port.number {
                environment[port.environmentName] = String(number)
            }
        }
        for upstream in service.upstreams { environment[upstream.environmentName] = upstream.localAddress }
        environment.merge(instance.environment) { _, node in node }

        let root: LaunchRoot
        switch service.rootfs {
        case _ where instance.image != nil: root = .directory(instance.image!.rootfs)
        case .host: root = .host
        case .directory(let path): root = .directory(path)
        }
        let imageUser = instance.image?.userAndGroup
        let user = service.user?.description ?? imageUser?.user ?? "0"
        // The image's group goes with the image's user only: a manifest that names its own user
        // gets that user's primary group.
        let group = service.group?.description ?? (service.user == nil ? imageUser?.group : nil)
        var namespaces = NamespaceSet()
        for kind in service.namespaces { namespaces.insert(NamespaceSet(kind)) }
        let isolation = service.isolation
        var idMapping: UserNamespaceMapping?
        if namespaces.contains(.user) {
            let ranges = { (mappings: [Manifest.IDMapping]) in
                mappings.map { IDRange(insideStart: $0.containerID, outsideStart: $0.hostID, count: $0.size) }
            }
            idMapping = UserNamespaceMapping(uids: ranges(isolation.uidMappings), gids: ranges(isolation.gidMappings))
        }
        // The manifest documents the instance id as the default hostname (at most 64 bytes).
        let hostname = namespaces.contains(.uts) ? isolation.hostname ?? String(instance.instanceID.prefix(64)) : nil
        let resourceLimits = isolation.rlimits.limits.sorted { $0.key.resource < $1.key.resource }.compactMap {
            entry -> ResourceLimit? in
            guard let resource = ResourceLimit.Resource(rawValue: entry.key.resource) else { return nil }
            return ResourceLimit(resource, soft: entry.value.soft ?? .max, hard: entry.value.hard ?? .max)
        }
        let resources = service.resources
        // "cpu … also sets the instance's CPU weight": one core is the default weight, 100.
        let cgroupLimits = CgroupLimits(
            memoryMaxBytes: UInt64(max(resources.memory.bytes, 0)),
            cpuMaxMicroCores: UInt64((resources.cpu * 1_000_000).rounded()),
            cpuWeight: UInt64(min(max((resources.cpu * 100).rounded(), 1), 10_000)),
            pidsMax: UInt64(max(resources.pids, 1)))

        self.init(
            instanceID: instance.instanceID,
            command: service.command.isEmpty ? instance.image?.command ?? [] : service.command,
            environment: environment,
            workingDirectory: service.workingDir ?? instance.image?.workingDirectory.flatMap { $0.isEmpty ? nil : $0 } ?? "/",
            user: UserSpec(user: user, group: group, additionalGroups: service.supplementaryGroups.map(\.description)),
            root: root,
            // An image's overlay keeps its upper directory (the launcher may create /proc, /dev
            // and /sys in it) and is remounted read-only by the launcher like any root.
            readOnlyRoot: service.readOnlyRootfs,
            mounts: service.mounts.map(LaunchMount.init(manifest:)),
            namespaces: namespaces,
            idMapping: idMapping,
            hostname: hostname,
            capabilities: Set(isolation.capabilities.compactMap { LinuxCapability(name: $0.rawValue) }),
            noNewPrivileges: isolation.noNewPrivileges,
            seccomp: isolation.seccomp == .unconfined ? .unconfined : .defaultDenyList,
            resourceLimits: resourceLimits,
            cgroupLimits: cgroupLimits)
    }
}

extension NamespaceSet {
    /// The namespace a manifest names.
    init(_ kind: NamespaceKind) {
        switch kind {
        case .pid: self = .pid
        case .mount: self = .mount
        case .uts: self = .uts
        case .ipc: self = .ipc
        case .net: self = .network
        case .user: self = .user
        case .cgroup: self = .cgroup
        }
    }
}

extension LaunchMount {
    /// A manifest's mount. A tmpfs gets the kernel's default mode, 1777.
    init(manifest mount: Manifest.Mount) {
        switch mount.type {
        case .bind:
            self = .bind(mount.source ?? "", at: mount.target, readOnly: mount.readOnly)
        case .tmpfs:
            self = LaunchMount(kind: .tmpfs(sizeBytes: mount.size.map { UInt64(max($0.bytes, 0)) }, mode: 0o1777),
                               target: mount.target, readOnly: mount.readOnly)
        }
    }
}
