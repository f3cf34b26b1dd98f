/// One service of an application: a program, how it is isolated and limited, how many
/// instances run where, and how they are checked, restarted, updated and found.
public struct Service: ManifestObject, Hashable {
    public var name: String
    public var description: String
    public var labels: StringMap
    /// An OCI image whose layers are the root filesystem and whose config gives the defaults
    /// of `command`, `env`, `workingDir` and `user`; nil: `rootfs`.
    public var image: ImageName?
    /// Empty only with an image: its entrypoint and cmd.
    public var command: [String]
    public var env: StringMap
    /// nil only with an image, when not written: the image's, else `/`.
    public var workingDir: String?
    /// nil only with an image, when not written: the image's, else root.
    public var user: UserReference?
    /// nil: the user's primary group (from the root filesystem's /etc/passwd), or 0 for a numeric user without an entry.
    public var group: UserReference?
    public var supplementaryGroups: [UserReference]
    public var stopSignal: StopSignal
    public var stopTimeout: Duration
    public var rootfs: RootFilesystem
    public var readOnlyRootfs: Bool
    public var mounts: [Mount]
    /// Keys of the key-value store given to each instance.
    public var kv: [KeyBinding]
    public var isolation: Isolation
    public var resources: Resources
    public var network: Network
    public var replicas: Int
    public var health: HealthCheck?
    /// As written; nil means the default (see ``readinessMode``).
    public var readiness: ReadinessMode?
    public var watchdog: Duration?
    public var restart: RestartPolicy
    public var update: UpdateStrategy
    public var placement: Placement
    public var disconnect: DisconnectPolicy
    public var discovery: Discovery
    /// Services called through the agent's local proxy.
    public var upstreams: [Upstream]
    public var logs: LogPolicy

    public init(name: String, command: [String]) {
        self.name = name
        self.description = ""
        self.labels = StringMap()
        self.image = nil
        self.command = command
        self.env = StringMap()
        self.workingDir = "/"
        self.user = .id(0)
        self.group = nil
        self.supplementaryGroups = []
        self.stopSignal = .SIGTERM
        self.stopTimeout = .seconds(10)
        self.rootfs = .host
        self.readOnlyRootfs = false
        self.mounts = []
        self.kv = []
        self.isolation = Isolation()
        self.resources = Resources()
        self.network = Network()
        self.replicas = 1
        self.health = nil
        self.readiness = nil
        self.watchdog = nil
        self.restart = RestartPolicy()
        self.update = UpdateStrategy()
        self.placement = Placement()
        self.disconnect = DisconnectPolicy()
        self.discovery = Discovery()
        self.upstreams = []
        self.logs = LogPolicy()
    }

    /// The namespaces each instance gets.
    public var namespaces: Set<NamespaceKind> {
        if let written = isolation.namespaces { return Set(written) }
        var namespaces = Set(NamespaceKind.defaults)
        if network.mode == .private { namespaces.insert(.net) }
        return namespaces
    }

    /// When an instance counts as up: as written, else at its first passing health check
    /// when it has one, else at exec.
    public var readinessMode: ReadinessMode {
        readiness ?? (health == nil ? .exec : .health)
    }

    /// The name registered in discovery.
    public var discoveryName: String { discovery.name ?? name }

    /// The port advertised in discovery, if the service has any.
    public var discoveryPort: Port? {
        discovery.port.flatMap(network.port(named:)) ?? network.ports.first
    }

    /// Environment variables Flotilla sets itself, which a manifest may not set.
    public static let reservedEnvironment: Set<String> = ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_FDS", "LISTEN_PID"]

    public static let spec = ObjectSpec(
        "Service", doc: "One service: its program, isolation, resources, instances, checks, restarts, rollout, placement, discovery and logs.",
        fields: [
            FieldSpec("name", String.self, required: true, example: "web", constraints: [.dnsLabel(maxLength: 63)], doc: "Unique within the application; lowercase letters, digits and `-`, starting with a letter (a DNS label)."),
            FieldSpec("description", String.self, default: "", example: "Static site", doc: "Free text for people."),
            FieldSpec("labels", StringMap.self, default: [:], example: ["tier": "frontend"], doc: "Key-value metadata; keys are letters, digits, `.`, `_`, `-` and `/`."),
            FieldSpec("image", ImageName.self, example: "registry.example:5000/team/web:1.4", doc: "An OCI image to run, instead of `rootfs`: `[registry[:port]/]repository[:tag][@sha256:…]` (Docker Hub without a registry, `latest` without a tag or digest). A tag is resolved to a digest once, when the revision is made, and the revision keeps both (`web:1.4@sha256:…`): every node runs the same bytes, and a tag pushed again changes nothing until the next apply. Each node pulls the image, checks every blob against its digest, unpacks each layer once and gives each instance an overlay of its own. The image's entrypoint and cmd, env, working directory and user are the defaults of `command`, `env`, `workingDir` and `user`. Registry credentials and CAs are the node's (`agentd --registry-credentials`, `--registry-ca`), never the manifest's."),
            FieldSpec("command", [String].self, defaultDescription: "with `image`, the image's entrypoint followed by its cmd; required without one", example: ["/bin/httpd", "-f", "-p", "8080"], constraints: [.nonEmpty], doc: "The argv to execute, no shell involved. A first element without `/` is looked up in `PATH` inside the root filesystem. With `image` it replaces both the image's entrypoint and cmd."),
            FieldSpec("env", StringMap.self, default: [:], example: ["LOG_LEVEL": "info"], doc: "Environment variables, added to `PATH`, `HOME` and the `PORT_<NAME>` of each port. `NOTIFY_SOCKET` and the `PORT_` of declared ports are set by Flotilla and cannot be set here."),
            FieldSpec("workingDir", String.self, defaultDescription: "`/`, or with `image` the image's working directory", example: "/srv", constraints: [.absolutePath], doc: "The working directory, inside the root filesystem."),
            FieldSpec("user", UserReference.self, defaultDescription: "`0`, or with `image` the image's user", example: "nobody", doc: "The user to run as: a name from the root filesystem's `/etc/passwd` or a number."),
            FieldSpec("group", UserReference.self, defaultDescription: "the user's primary group", example: "nogroup", doc: "The group to run as: a name from the root filesystem's `/etc/group` or a number."),
            FieldSpec("supplementaryGroups", [UserReference].self, default: [], example: ["audio"], doc: "Further groups, by name or number."),
            FieldSpec("stopSignal", StopSignal.self, default: "SIGTERM", example: "SIGQUIT", doc: "The signal that asks the service to stop; `TERM` and `SIGTERM` are the same."),
            FieldSpec("stopTimeout", Duration.self, default: "10s", doc: "How long to wait after `stopSignal` before every process in the instance's cgroup is killed. Not waited for when the signal cannot work: the main process is pid 1 of its own pid namespace and has no handler for it, which the kernel then drops (busybox `httpd`, `sleep`)."),
            FieldSpec("rootfs", RootFilesystem.self, default: "host", example: "/var/lib/flotilla/images/busybox", doc: "`\"host\"` runs on the host's own filesystem, seen through a private mount namespace; an absolute path to a directory makes it the service's `/` (with its own `/proc`, a minimal `/dev` and a read-only `/sys`). Not with `image`, which gives the root filesystem."),
            FieldSpec("readOnlyRootfs", Bool.self, default: false, doc: "Mount the root filesystem read-only; write only to `mounts`."),
            FieldSpec("mounts", [Mount].self, default: [], example: [["type": "tmpfs", "target": "/tmp", "size": "64Mi"]], doc: "Bind and tmpfs mounts."),
            FieldSpec("kv", [KeyBinding].self, default: [], example: [["key": "web/config/port", "env": "LISTEN_PORT"]], doc: "Keys of the cluster's key-value store given to each instance as environment variables or read-only files; a change of one replaces the instances under `update`."),
            FieldSpec("isolation", Isolation.self, default: [:], doc: "Namespaces, capabilities, seccomp, rlimits."),
            FieldSpec("resources", Resources.self, default: [:], doc: "CPU, memory and process limits, and the scheduler's reservation."),
            FieldSpec("network", Network.self, default: [:], doc: "Network mode and named ports."),
            FieldSpec("replicas", Int.self, default: 1, example: 3, constraints: [.integerRange(0...10_000)], doc: "How many instances to run."),
            FieldSpec("health", HealthCheck.self, example: ["http": ["port": "http", "path": "/"], "interval": "5s"], doc: "How to check that an instance works. None by default: an instance is then as healthy as it is running."),
            FieldSpec("readiness", ReadinessMode.self, defaultDescription: "`health` with a health check, else `exec`", example: "notify", doc: "When an instance counts as up: `exec` (when it has been executed), `health` (at its first passing health check) or `notify` (when it sends `READY=1` on `NOTIFY_SOCKET`, the sd_notify protocol)."),
            FieldSpec("watchdog", Duration.self, example: "30s", constraints: [.positiveDuration], doc: "With the sd_notify protocol: the instance must send `WATCHDOG=1` at least this often, or it is restarted (it finds the value in `WATCHDOG_USEC`)."),
            FieldSpec("restart", RestartPolicy.self, default: [:], doc: "When and how fast exited instances restart."),
            FieldSpec("update", UpdateStrategy.self, default: [:], doc: "How a new revision replaces running instances."),
            FieldSpec("placement", Placement.self, default: [:], doc: "Which nodes may run instances."),
            FieldSpec("disconnect", DisconnectPolicy.self, default: [:], doc: "When instances of a node that stopped answering are replaced."),
            FieldSpec("discovery", Discovery.self, default: [:], doc: "Registration in the service catalog, answered over HTTP and DNS by every agent."),
            FieldSpec("upstreams", [Upstream].self, default: [], example: [["service": "api", "localPort": 9000, "strategy": "least-outstanding"]], doc: "Services this one calls through the agent's local proxy, on 127.0.0.1 ports of its own choosing."),
            FieldSpec("logs", LogPolicy.self, default: [:], doc: "How much output is kept per instance."),
        ])

    public init?(reading reader: ObjectReader) {
        let name = reader.read("name", as: String.self)
        image = reader.read("image")
        let command = reader.read("command", as: [String].self)
        description = reader.read("description") ?? ""
        labels = reader.read("labels") ?? StringMap()
        env = reader.read("env") ?? StringMap()
        // Without an image the defaults are fixed; with one they are the image's, known when
        // a node has pulled it, so an unwritten value stays nil.
        let imageGivesDefaults = image != nil || reader.isInvalid("image")
        workingDir = reader.read("workingDir") ?? (imageGivesDefaults ? nil : "/")
        user = reader.read("user") ?? (imageGivesDefaults ? nil : .id(0))
        group = reader.read("group")
        supplementaryGroups = reader.read("supplementaryGroups") ?? []
        stopSignal = reader.read("stopSignal") ?? .SIGTERM
        stopTimeout = reader.read("stopTimeout") ?? .seconds(10)
        rootfs = reader.read("rootfs") ?? .host
        readOnlyRootfs = reader.read("readOnlyRootfs") ?? false
        mounts = reader.read("mounts") ?? []
        kv = reader.read("kv") ?? []
        isolation = reader.read("isolation") ?? Isolation()
        resources = reader.read("resources") ?? Resources()
        network = reader.read("network") ?? Network()
        replicas = reader.read("replicas") ?? 1
        health = reader.read("health")
        readiness = reader.read("readiness")
        watchdog = reader.read("watchdog")
        restart = reader.read("restart") ?? RestartPolicy()
        update = reader.read("update") ?? UpdateStrategy()
        placement = reader.read("placement") ?? Placement()
        disconnect = reader.read("disconnect") ?? DisconnectPolicy()
        discovery = reader.read("discovery") ?? Discovery()
        upstreams = reader.read("upstreams") ?? []
        logs = reader.read("logs") ?? LogPolicy()
        // Cross-field checks run even when name or command is missing, so that one pass
        // reports everything; the service itself is then not built.
        self.name = name ?? ""
        self.command = command ?? []
        if let command {
            Command.reportProblems(command, at: reader.path.appending("command"), reader)
        } else if !reader.isPresent("command"), !reader.isPresent("image") {
            reader.report("command", "is required without an image; for example [\"/bin/httpd\",\"-f\",\"-p\",\"8080\"], or name an image whose entrypoint runs")
        }
        crossCheck(reader)
        if name == nil || (command == nil && image == nil) { return nil }
    }

    /// Checks that relate one part of the service to another.
    private func crossCheck(_ reader: ObjectReader) {
        let path = reader.path
        ManifestLabels.reportProblems(labels, at: path.appending("labels"), reader)
        if reader.isPresent("image"), reader.isPresent("rootfs") {
            reader.report("rootfs", "cannot be set with image, whose layers are the root filesystem; remove one of them")
        }
        let portVariables = network.ports.map(\.environmentName)
        for (key, value) in env {
            let keyPath = path.appending("env").appending(key)
            if let problem = NameRules.environmentNameProblem(key) {
                reader.report(at: keyPath, problem)
            } else if key.hasPrefix("PORT_"), let index = portVariables.firstIndex(of: key) {
                reader.report(at: keyPath, "is set by Flotilla to the number of network.ports[\(index)]; remove it, or rename the port")
            } else if key.hasPrefix("UPSTREAM_"), let index = upstreams.firstIndex(where: { $0.environmentName == key }) {
                reader.report(at: keyPath, "is set by Flotilla to the local address of upstreams[\(index)]; remove it")
            } else if Self.reservedEnvironment.contains(key) {
                reader.report(at: keyPath, "is set by Flotilla itself; remove it")
            }
            if value.utf8.contains(0) { reader.report(at: keyPath, "contains a NUL character, which cannot be passed in the environment") }
        }
        reportMountConflicts(reader)
        reportKeyBindingConflicts(reader)
        reportPortReferences(reader)
        reportUpstreamConflicts(reader)
        reportNamespaceConflicts(reader)
        // A health check that is written but broken is reported where it is broken.
        if readiness == .health, health == nil, !reader.isInvalid("health") {
            reader.report("readiness", "\"health\" needs a health check; add \"health\" or write \"exec\" or \"notify\"")
        }
        let canariesPath = path.appending("update").appending("canaries")
        if update.canaries > replicas, !reader.isInvalid("replicas"), !reader.hasProblem(at: canariesPath) {
            reader.report(at: canariesPath, "\(update.canaries) is more than replicas (\(replicas)); at most \(replicas) canaries")
        }
    }

    private func reportMountConflicts(_ reader: ObjectReader) {
        for (index, mount) in mounts.enumerated() {
            if let first = mounts[..<index].firstIndex(where: { $0.target == mount.target }) {
                reader.report(at: reader.path.appending("mounts").appending(index).appending("target"), "\"\(mount.target)\" is already the target of mounts[\(first)]; mount each path once")
            }
        }
    }

    private func reportKeyBindingConflicts(_ reader: ObjectReader) {
        for (index, binding) in kv.enumerated() {
            let path = reader.path.appending("kv").appending(index)
            if let name = binding.env {
                if env[name] != nil { reader.report(at: path.appending("env"), "\(name) is also set in env; set it in one place") }
                if kv[..<index].contains(where: { $0.env == name }) { reader.report(at: path.appending("env"), "\(name) is already given by another binding") }
                if Self.reservedEnvironment.contains(name) || name.hasPrefix("PORT_") { reader.report(at: path.appending("env"), "\(name) is set by Flotilla itself; use another name") }
            }
            if let file = binding.file {
                if mounts.contains(where: { $0.target == file }) || kv[..<index].contains(where: { $0.file == file }) {
                    reader.report(at: path.appending("file"), "\"\(file)\" is already mounted; give each file one source")
                }
            }
        }
    }

    private func reportPortReferences(_ reader: ObjectReader) {
        // Names as written: a port that could not be read is still what a check names, and its
        // problem is reported at the port, not again at every reference to it.
        guard let written = Self.writtenPortNames(reader) else { return }
        let declared = written.compactMap { $0 }
        let someNameIsUnreadable = written.contains(nil)
        func verify(_ portName: String?, at portPath: JSONPath, needsTCP: Bool) {
            guard let portName, !reader.hasProblem(at: portPath) else { return }
            guard let port = network.port(named: portName) else {
                guard !declared.contains(portName), !someNameIsUnreadable else { return }
                let known = declared.isEmpty ? "; the service declares no ports: add it to network.ports" : " (declared ports: \(declared.joined(separator: ", ")))"
                reader.report(at: portPath, "\"\(portName)\" is not a port of this service\(Suggestion.hint(for: portName, among: declared))\(known)")
                return
            }
            if needsTCP, port.protocol != .tcp {
                reader.report(at: portPath, "\"\(portName)\" is a \(port.protocol.rawValue) port; this check needs a tcp port")
            }
        }
        let healthPath = reader.path.appending("health")
        switch health?.probe {
        case .http(let probe)?: verify(probe.port, at: healthPath.appending("http").appending("port"), needsTCP: true)
        case .tcp(let probe)?: verify(probe.port, at: healthPath.appending("tcp").appending("port"), needsTCP: true)
        default: break
        }
        verify(discovery.port, at: reader.path.appending("discovery").appending("port"), needsTCP: false)
    }

    /// The names of `network.ports` as written, nil for a port without a readable name; nil
    /// altogether when `network` or its `ports` is not even the right kind of value.
    private static func writtenPortNames(_ reader: ObjectReader) -> [String?]? {
        guard let network = reader.rawValue("network") else { return [] }
        guard case .object(let object) = network else { return nil }
        guard let ports = object["ports"] else { return [] }
        guard case .array(let elements) = ports else { return nil }
        return elements.map { element in
            guard case .object(let port) = element, case .string(let name)? = port["name"] else { return nil }
            return name
        }
    }

    /// Each local port is listened on once, beside the service's own ports; each upstream
    /// service gets one address variable.
    private func reportUpstreamConflicts(_ reader: ObjectReader) {
        for (index, upstream) in upstreams.enumerated() {
            let path = reader.path.appending("upstreams").appending(index)
            let earlier = upstreams[..<index]
            if let first = earlier.firstIndex(where: { $0.localPort == upstream.localPort }) {
                reader.report(at: path.appending("localPort"), "\(upstream.localPort) is already the localPort of upstreams[\(first)]; give each upstream a port of its own")
            } else if let port = network.ports.firstIndex(where: { $0.number == upstream.localPort && $0.protocol == .tcp }) {
                reader.report(at: path.appending("localPort"), "\(upstream.localPort) is the service's own port network.ports[\(port)]; choose another localPort")
            }
            if let first = earlier.firstIndex(where: { $0.service == upstream.service }) {
                reader.report(at: path.appending("service"), "\"\(upstream.service)\" is already the service of upstreams[\(first)]; call each service through one local port")
            }
        }
    }

    private func reportNamespaceConflicts(_ reader: ObjectReader) {
        let namespacesPath = reader.path.appending("isolation").appending("namespaces")
        // network.mode as written, not its default in place of a broken value.
        let modeIsKnown = !reader.hasProblem(at: reader.path.appending("network").appending("mode"))
        if let written = isolation.namespaces, modeIsKnown {
            if network.mode == .private, !written.contains(.net) {
                reader.report(at: namespacesPath, "lacks \"net\", but network.mode is \"private\"; add \"net\" or use network.mode \"host\"")
            }
            if network.mode == .host, written.contains(.net) {
                reader.report(at: namespacesPath, "has \"net\", but network.mode is \"host\"; remove \"net\" or set network.mode to \"private\"")
            }
        }
        let namespaces = self.namespaces
        if isolation.hostname != nil, !namespaces.contains(.uts) {
            reader.report(at: reader.path.appending("isolation").appending("hostname"), "needs the \"uts\" namespace; add it to isolation.namespaces")
        }
        if namespaces.contains(.user) {
            if isolation.uidMappings.isEmpty {
                reader.report(at: reader.path.appending("isolation").appending("uidMappings"), "must not be empty with the \"user\" namespace")
            }
            if isolation.gidMappings.isEmpty {
                reader.report(at: reader.path.appending("isolation").appending("gidMappings"), "must not be empty with the \"user\" namespace")
            }
        }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("name", name)
        writer.write("description", description)
        writer.write("labels", labels)
        writer.write("image", image)
        if !command.isEmpty || image == nil { writer.write("command", command) }
        writer.write("env", env)
        writer.write("workingDir", workingDir)
        writer.write("user", user)
        writer.write("group", group)
        writer.write("supplementaryGroups", supplementaryGroups)
        writer.write("stopSignal", stopSignal)
        writer.write("stopTimeout", stopTimeout)
        if image == nil { writer.write("rootfs", rootfs) }
        writer.write("readOnlyRootfs", readOnlyRootfs)
        writer.write("mounts", mounts)
        writer.write("kv", kv)
        writer.write("isolation", isolation)
        writer.write("resources", resources)
        writer.write("network", network)
        writer.write("replicas", replicas)
        writer.write("health", health)
        writer.write("readiness", readiness)
        writer.write("watchdog", watchdog)
        writer.write("restart", restart)
        writer.write("update", update)
        writer.write("placement", placement)
        writer.write("disconnect", disconnect)
        writer.write("discovery", discovery)
        writer.write("upstreams", upstreams)
        writer.write("logs", logs)
    }
}

/// The rules for label keys and values, shared by applications and services.
enum ManifestLabels {
    static func reportProblems(_ labels: StringMap, at path: JSONPath, _ reader: ObjectReader) {
        for (key, value) in labels {
            let bytes = Array(key.utf8)
            let isAlphanumeric = { (byte: UInt8) in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            }
            let valid = !bytes.isEmpty && bytes.count <= 253 && isAlphanumeric(bytes[0]) && isAlphanumeric(bytes[bytes.count - 1])
                && bytes.allSatisfy { isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "/") }
            if !valid {
                reader.report(at: path.appending(key), "is not a valid label key; use letters, digits, '.', '_', '-' and '/', starting and ending with a letter or digit, e.g. \"tier\" or \"example.com/team\"")
            }
            if value.utf8.count > 1024 || value.utf8.contains(0) {
                reader.report(at: path.appending(key), "the value must be at most 1024 bytes without NUL characters")
            }
        }
    }
}
