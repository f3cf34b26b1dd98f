/// How healthy instances are registered with service discovery.
public struct Discovery: ManifestObject, Hashable {
    public var enabled: Bool
    /// As written; nil means the service's name (see ``Service/discoveryName``).
    public var name: String?
    public var tags: [String]
    /// As written; nil means the service's first port.
    public var port: String?
    /// The share of traffic an instance gets relative to the others (SRV weight, weighted balancing).
    public var weight: Int
    /// How long a deregistered instance keeps running before it is told to stop, so that
    /// clients and proxies stop sending to it first (Nomad's `shutdown_delay`).
    public var drainDelay: Duration

    public init(
        enabled: Bool = true, name: String? = nil, tags: [String] = [], port: String? = nil, weight: Int = 1, drainDelay: Duration = .zero
    ) {
        self.enabled = enabled
        self.name = name
        self.tags = tags
        self.port = port
        self.weight = weight
        self.drainDelay = drainDelay
    }

    public static let spec = ObjectSpec(
        "Discovery", doc: "Registration in the service catalog, which every agent answers from its own copy of the cluster's state (HTTP `/v1/catalog`, DNS). An instance is registered once ready: healthy, or running when it has no health check. It is deregistered when it turns unhealthy, when its node is marked down, and before it is told to stop: `drainDelay` after deregistration, its stop signal is sent.",
        fields: [
            FieldSpec("enabled", Bool.self, default: true, doc: "Register instances at all."),
            FieldSpec("name", String.self, defaultDescription: "the service's name", example: "api", constraints: [.dnsLabel(maxLength: 63)], doc: "The name to register, to be answered in DNS as `<name>.service.flotilla`."),
            FieldSpec("tags", [String].self, default: [], example: ["primary", "v2"], doc: "Tags to filter on (`<tag>.<name>.service.flotilla`); each a DNS label."),
            FieldSpec("port", String.self, defaultDescription: "the first of `network.ports`", example: "http", doc: "The name of the port to advertise."),
            FieldSpec("weight", Int.self, default: 1, constraints: [.integerRange(1...65535)], doc: "Each instance's share of traffic relative to other instances of the name: the SRV weight in DNS, and the weight of `weighted` balancing."),
            FieldSpec("drainDelay", Duration.self, default: "0s", example: "5s", doc: "Time between an instance's deregistration and its stop signal, for clients, DNS caches and proxies to stop sending it new requests (Nomad's `shutdown_delay`): when the cluster stops it, and when a failed health check restarts it (it runs on, unhealthy and unchecked, for the delay)."),
        ])

    public init?(reading reader: ObjectReader) {
        enabled = reader.read("enabled") ?? true
        name = reader.read("name")
        tags = reader.read("tags") ?? []
        port = reader.read("port")
        weight = reader.read("weight") ?? 1
        drainDelay = reader.read("drainDelay") ?? .zero
        var seen = Set<String>()
        for (index, tag) in tags.enumerated() {
            let tagPath = reader.path.appending("tags").appending(index)
            if let problem = NameRules.dnsLabelProblem(tag) {
                reader.report(at: tagPath, problem)
            } else if !seen.insert(tag).inserted {
                reader.report(at: tagPath, "\"\(tag)\" is listed twice; remove one")
            }
        }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("enabled", enabled)
        writer.write("name", name)
        writer.write("tags", tags)
        writer.write("port", port)
        writer.write("weight", weight)
        writer.write("drainDelay", drainDelay)
    }
}

/// How much of an instance's output is kept on its node.
public struct LogPolicy: ManifestObject, Hashable {
    public var maxSize: ByteSize
    public var files: Int

    public init(maxSize: ByteSize = .mebibytes(10), files: Int = 5) {
        self.maxSize = maxSize
        self.files = files
    }

    public static let spec = ObjectSpec(
        "LogPolicy", doc: "Each instance's stdout and stderr are kept in size-rotated files on its node (and sent to journald when it runs).",
        fields: [
            FieldSpec("maxSize", ByteSize.self, default: "10Mi", constraints: [.sizeAtLeast(4096, text: "4Ki")], doc: "Size at which the current file is rotated."),
            FieldSpec("files", Int.self, default: 5, constraints: [.integerRange(1...100)], doc: "Files kept per instance, the current one included."),
        ])

    public init?(reading reader: ObjectReader) {
        maxSize = reader.read("maxSize") ?? .mebibytes(10)
        files = reader.read("files") ?? 5
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("maxSize", maxSize)
        writer.write("files", files)
    }
}
