/// A named port of a service: static (the same number on every instance) or dynamic
/// (assigned per instance from the agent's range).
public struct Port: ManifestObject, Hashable {
    public var name: String
    /// nil when dynamic.
    public var number: Int?
    public var `protocol`: PortProtocol

    public init(name: String, number: Int? = nil, protocol: PortProtocol = .tcp) {
        self.name = name
        self.number = number
        self.protocol = `protocol`
    }

    /// `PORT_HTTP` for a port named `http`: how the process learns its port.
    public var environmentName: String {
        "PORT_" + name.uppercased().replacingAll("-", with: "_")
    }

    public static let spec = ObjectSpec(
        "Port", doc: "A named port. The process finds its number in the environment as `PORT_<NAME>` (upper case, `-` as `_`): `PORT_HTTP`.",
        fields: [
            FieldSpec("name", String.self, required: true, example: "http", constraints: [.dnsLabel(maxLength: 15)], doc: "Lowercase name, up to 15 characters (as IANA service names); health checks and discovery refer to it."),
            FieldSpec("port", Int.self, defaultDescription: "dynamic: assigned per instance", example: 8080, constraints: [.integerRange(1...65535)], doc: "A static port number. Leave it out to get a dynamic port per instance, which lets several replicas share a node."),
            FieldSpec("protocol", PortProtocol.self, default: "tcp", doc: "`tcp` or `udp`."),
        ])

    public init?(reading reader: ObjectReader) {
        let name = reader.read("name", as: String.self)
        number = reader.read("port")
        `protocol` = reader.read("protocol") ?? .tcp
        guard let name else { return nil }
        self.name = name
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("name", name)
        writer.write("port", number)
        writer.write("protocol", `protocol`)
    }
}

/// A service's network: shared with the host or its own, and its named ports.
public struct Network: ManifestObject, Hashable {
    public var mode: NetworkMode
    public var ports: [Port]

    public init(mode: NetworkMode = .host, ports: [Port] = []) {
        self.mode = mode
        self.ports = ports
    }

    public func port(named name: String) -> Port? {
        ports.first { $0.name == name }
    }

    public static let spec = ObjectSpec(
        "Network", doc: "The service's network and its named ports.",
        fields: [
            FieldSpec("mode", NetworkMode.self, default: "host", doc: "`host` shares the node's network stack; `private` gives each instance a network namespace of its own, with loopback, whose ports the agent publishes on the node."),
            FieldSpec("ports", [Port].self, default: [], example: [["name": "http", "port": 8080], ["name": "metrics"]], doc: "Named ports, static or dynamic."),
        ])

    public init?(reading reader: ObjectReader) {
        mode = reader.read("mode") ?? .host
        ports = reader.read("ports") ?? []
        let portsPath = reader.path.appending("ports")
        for (index, port) in ports.enumerated() {
            let earlier = ports[..<index]
            if let first = earlier.firstIndex(where: { $0.name == port.name }) {
                reader.report(at: portsPath.appending(index).appending("name"), "\"\(port.name)\" is already the name of ports[\(first)]; port names must be unique")
            }
            if let number = port.number, let first = earlier.firstIndex(where: { $0.number == number && $0.protocol == port.protocol }) {
                reader.report(at: portsPath.appending(index).appending("port"), "\(number)/\(port.protocol.rawValue) is already used by ports[\(first)]; a static port may be used once per service")
            }
        }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("mode", mode)
        writer.write("ports", ports)
    }
}
