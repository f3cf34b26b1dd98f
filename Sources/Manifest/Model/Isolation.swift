/// A range of ids inside a user namespace and the host ids they stand for.
public struct IDMapping: ManifestObject, Hashable {
    public var containerID: UInt32
    public var hostID: UInt32
    public var size: UInt32

    public init(containerID: UInt32, hostID: UInt32, size: UInt32) {
        self.containerID = containerID
        self.hostID = hostID
        self.size = size
    }

    public static let spec = ObjectSpec(
        "IDMapping", doc: "A range of user or group ids inside the service's user namespace, and the host ids they map to (user_namespaces(7)).",
        fields: [
            FieldSpec("containerID", Int.self, required: true, example: 0, constraints: [.integerRange(0...4_294_967_294)], doc: "First id inside the namespace."),
            FieldSpec("hostID", Int.self, required: true, example: 100_000, constraints: [.integerRange(0...4_294_967_294)], doc: "First host id it maps to."),
            FieldSpec("size", Int.self, required: true, example: 65536, constraints: [.integerRange(1...4_294_967_295)], doc: "How many consecutive ids are mapped."),
        ])

    public init?(reading reader: ObjectReader) {
        let containerID = reader.read("containerID", as: Int.self)
        let hostID = reader.read("hostID", as: Int.self)
        let size = reader.read("size", as: Int.self)
        guard let containerID, let hostID, let size, let container = UInt32(exactly: containerID),
            let host = UInt32(exactly: hostID), let count = UInt32(exactly: size)
        else { return nil }
        if Int64(hostID) + Int64(size) > 4_294_967_295 || Int64(containerID) + Int64(size) > 4_294_967_295 {
            reader.report("size", "\(size) runs past the last id 4294967294; make it smaller")
        }
        self.init(containerID: container, hostID: host, size: count)
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("containerID", Int(containerID))
        writer.write("hostID", Int(hostID))
        writer.write("size", Int(size))
    }
}

/// How a service is fenced off from the host and from other services.
public struct Isolation: ManifestObject, Hashable {
    /// The namespaces to create, as written; nil means the defaults (see ``Service/namespaces``).
    public var namespaces: [NamespaceKind]?
    public var hostname: String?
    public var capabilities: [Capability]
    public var noNewPrivileges: Bool
    public var seccomp: SeccompProfile
    public var rlimits: Rlimits
    public var uidMappings: [IDMapping]
    public var gidMappings: [IDMapping]

    public static let defaultMappings = [IDMapping(containerID: 0, hostID: 100_000, size: 65536)]

    public static let spec = ObjectSpec(
        "Isolation", doc: "How the service is fenced off: namespaces, privileges, system calls and resource limits. The defaults are safe: no capabilities, `no_new_privs`, and the default seccomp filter.",
        fields: [
            FieldSpec("namespaces", [NamespaceKind].self, defaultDescription: "`[\"pid\", \"mount\", \"uts\", \"ipc\", \"cgroup\"]`, plus `\"net\"` when `network.mode` is `private`", example: ["pid", "mount", "uts", "ipc", "cgroup"], doc: "Linux namespaces to create. `mount` is always required; `net` must match `network.mode`; `user` maps ids through `uidMappings` and `gidMappings`."),
            FieldSpec("hostname", String.self, defaultDescription: "the instance's id", example: "web-1", constraints: [.hostname], doc: "The host name inside the service. Needs the `uts` namespace."),
            FieldSpec("capabilities", [Capability].self, default: [], example: ["CAP_NET_BIND_SERVICE"], doc: "Capabilities the service keeps (bounding, permitted, effective, inheritable and ambient sets); every other one is dropped. `NET_BIND_SERVICE` and `CAP_NET_BIND_SERVICE` are the same."),
            FieldSpec("noNewPrivileges", Bool.self, default: true, doc: "Set `no_new_privs`, so that setuid binaries and file capabilities grant nothing."),
            FieldSpec("seccomp", SeccompProfile.self, default: "default", doc: "`default` blocks system calls a service should never need (like Docker's default profile); `unconfined` applies no filter."),
            FieldSpec("rlimits", Rlimits.self, default: [:], example: ["nofile": 4096], doc: "Resource limits (setrlimit(2))."),
            FieldSpec("uidMappings", [IDMapping].self, default: [["containerID": 0, "hostID": 100_000, "size": 65536]], doc: "With the `user` namespace: which host user ids the service's ids stand for."),
            FieldSpec("gidMappings", [IDMapping].self, default: [["containerID": 0, "hostID": 100_000, "size": 65536]], doc: "With the `user` namespace: which host group ids the service's ids stand for."),
        ])

    public init(
        namespaces: [NamespaceKind]? = nil, hostname: String? = nil, capabilities: [Capability] = [], noNewPrivileges: Bool = true,
        seccomp: SeccompProfile = .default, rlimits: Rlimits = Rlimits(), uidMappings: [IDMapping] = Isolation.defaultMappings,
        gidMappings: [IDMapping] = Isolation.defaultMappings
    ) {
        self.namespaces = namespaces
        self.hostname = hostname
        self.capabilities = capabilities
        self.noNewPrivileges = noNewPrivileges
        self.seccomp = seccomp
        self.rlimits = rlimits
        self.uidMappings = uidMappings
        self.gidMappings = gidMappings
    }

    public init?(reading reader: ObjectReader) {
        namespaces = reader.read("namespaces")
        hostname = reader.read("hostname")
        capabilities = reader.read("capabilities") ?? []
        noNewPrivileges = reader.read("noNewPrivileges") ?? true
        seccomp = reader.read("seccomp") ?? .default
        rlimits = reader.read("rlimits") ?? Rlimits()
        uidMappings = reader.read("uidMappings") ?? Self.defaultMappings
        gidMappings = reader.read("gidMappings") ?? Self.defaultMappings
        if let namespaces {
            Self.reportDuplicates(namespaces.map(\.rawValue), key: "namespaces", reader)
            if !namespaces.contains(.mount) {
                reader.report("namespaces", "must include \"mount\": every service gets a private mount namespace")
            }
        }
        Self.reportDuplicates(capabilities.map(\.rawValue), key: "capabilities", reader)
        for (key, mappings) in [("uidMappings", uidMappings), ("gidMappings", gidMappings)] {
            Self.reportOverlaps(mappings, key: key, reader)
        }
    }

    private static func reportDuplicates(_ names: [String], key: String, _ reader: ObjectReader) {
        var seen = Set<String>()
        for (index, name) in names.enumerated() where !seen.insert(name).inserted {
            reader.report(at: reader.path.appending(key).appending(index), "\"\(name)\" is listed twice; remove one")
        }
    }

    private static func reportOverlaps(_ mappings: [IDMapping], key: String, _ reader: ObjectReader) {
        for (index, mapping) in mappings.enumerated() {
            for earlier in mappings[..<index] {
                let inside = max(mapping.containerID, earlier.containerID) < min(UInt64(mapping.containerID) + UInt64(mapping.size), UInt64(earlier.containerID) + UInt64(earlier.size))
                let host = max(mapping.hostID, earlier.hostID) < min(UInt64(mapping.hostID) + UInt64(mapping.size), UInt64(earlier.hostID) + UInt64(earlier.size))
                if inside || host {
                    reader.report(at: reader.path.appending(key).appending(index), "overlaps an earlier mapping; id ranges must not overlap")
                    break
                }
            }
        }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("namespaces", namespaces)
        writer.write("hostname", hostname)
        writer.write("capabilities", capabilities)
        writer.write("noNewPrivileges", noNewPrivileges)
        writer.write("seccomp", seccomp)
        writer.write("rlimits", rlimits)
        writer.write("uidMappings", uidMappings)
        writer.write("gidMappings", gidMappings)
    }
}
