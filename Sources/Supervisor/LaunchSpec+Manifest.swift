import Manifest

/// What the node knows about one instance besides its service's spec.
public struct InstanceFacts: Sendable, Hashable {
    /// The instance's id (names its cgroup; the default hostname).
    public var instanceID: String
    /// Port numbers assigned to the service's dynamic ports, by port name.
    public var assignedPorts: [String: Int]
    /// Environment the node adds (NOTIFY_SOCKET and the like); wins over the manifest's.
    public var environment: [String: String]

    /// Facts about one instance.
    public init(instanceID: String, assignedPorts: [String: Int] = [:], environment: [String: String] = [:]) {
        self.instanceID = instanceID
        self.assignedPorts = assignedPorts
        self.environment = environment
    }
}

extension LaunchSpec {
    /// The launch of one instance of a manifest's service. User and group names stay names here:
    /// the supervisor resolves them from the root filesystem's /etc/passwd and /etc/group at
    /// launch. Output is discarded until logging is wired.
    public init(service: Service, instance: InstanceFacts) {
        var environment: [String: String] = [:]
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
        case .host: root = .host
        case .directory(let path): root = .directory(path)
        }
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
            command: service.command,
            environment: environment,
            workingDirectory: service.workingDir,
            user: UserSpec(user: service.user.description, group: service.group?.description,
                           additionalGroups: service.supplementaryGroups.map(\.description)),
            root: root,
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
