/// A filesystem mounted into a service: a bind mount of a host path or a tmpfs.
public struct Mount: ManifestObject, Hashable {
    public var type: MountType
    /// Bind mounts only: the host path.
    public var source: String?
    /// Where it appears inside the service.
    public var target: String
    public var readOnly: Bool
    /// tmpfs only: its size limit.
    public var size: ByteSize?

    public init(type: MountType, source: String? = nil, target: String, readOnly: Bool = false, size: ByteSize? = nil) {
        self.type = type
        self.source = source
        self.target = target
        self.readOnly = readOnly
        self.size = size
    }

    public static let spec = ObjectSpec(
        "Mount", doc: "A filesystem mounted into the service, after its root is in place.",
        fields: [
            FieldSpec("type", MountType.self, required: true, example: "bind", doc: "`bind` makes a host path visible inside; `tmpfs` mounts a fresh in-memory filesystem."),
            FieldSpec("source", String.self, example: "/srv/data", constraints: [.absolutePath], doc: "For `bind`: the absolute host path. Not allowed for `tmpfs`."),
            FieldSpec("target", String.self, required: true, example: "/data", constraints: [.absolutePath], doc: "The absolute path inside the service; created if missing. Not `/`, `/proc`, `/sys` or `/dev`."),
            FieldSpec("readOnly", Bool.self, default: false, doc: "Mount read-only."),
            FieldSpec("size", ByteSize.self, example: "64Mi", doc: "For `tmpfs`: the most it may hold (default: half of the node's memory, the kernel's default). Not allowed for `bind`."),
        ])

    public init?(reading reader: ObjectReader) {
        let type = reader.read("type", as: MountType.self)
        let source = reader.read("source", as: String.self)
        let target = reader.read("target", as: String.self)
        readOnly = reader.read("readOnly") ?? false
        size = reader.read("size", as: ByteSize.self)
        if let target, ["/", "/proc", "/sys", "/dev"].contains(target) {
            reader.report("target", "\"\(target)\" is set up by Flotilla itself; mount somewhere else, e.g. \"/data\"")
        }
        switch type {
        case .bind?:
            if !reader.isPresent("source") { reader.report("source", "is required for a bind mount; write the host path, e.g. \"/srv/data\"") }
            if reader.isPresent("size") { reader.report("size", "applies only to tmpfs mounts; remove it") }
        case .tmpfs?:
            if reader.isPresent("source") { reader.report("source", "does not apply to tmpfs mounts; remove it") }
        case nil:
            break
        }
        guard let type, let target else { return nil }
        self.type = type
        self.source = source
        self.target = target
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("type", type)
        writer.write("source", source)
        writer.write("target", target)
        writer.write("readOnly", readOnly)
        writer.write("size", size)
    }
}
