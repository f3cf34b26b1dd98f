/// A manifest: one application made of one or more services, applied as a unit.
public struct Application: ManifestObject, Hashable {
    /// The only version of the format so far.
    public static let formatVersion = 1

    /// Where editors find the schema; kept so that a round trip preserves it.
    public var schemaLocation: String?
    public var version: Int
    public var name: String
    public var description: String
    public var labels: StringMap
    public var services: [Service]

    public init(name: String, services: [Service]) {
        self.schemaLocation = nil
        self.version = Self.formatVersion
        self.name = name
        self.description = ""
        self.labels = StringMap()
        self.services = services
    }

    public func service(named name: String) -> Service? {
        services.first { $0.name == name }
    }

    public static let spec = ObjectSpec(
        "Application", doc: "A manifest: an application of one or more services, applied as a unit — all its services change together or none do.",
        fields: [
            FieldSpec("$schema", String.self, example: "./schema.json", doc: "The JSON Schema of this format, for editors; ignored by Flotilla."),
            FieldSpec("version", Int.self, default: 1, constraints: [.integerRange(1...1)], doc: "The version of the manifest format."),
            FieldSpec("name", String.self, required: true, example: "shop", constraints: [.dnsLabel(maxLength: 63)], doc: "The application's name, a DNS label; unique in the cluster."),
            FieldSpec("description", String.self, default: "", doc: "Free text for people."),
            FieldSpec("labels", StringMap.self, default: [:], example: ["team": "payments"], doc: "Key-value metadata."),
            FieldSpec("services", [Service].self, required: true, constraints: [.nonEmpty], doc: "The services, each with a unique name."),
        ])

    public init?(reading reader: ObjectReader) {
        schemaLocation = reader.read("$schema")
        version = reader.read("version") ?? Self.formatVersion
        let name = reader.read("name", as: String.self)
        description = reader.read("description") ?? ""
        labels = reader.read("labels") ?? StringMap()
        // Every service is read even when an earlier one is broken, so that all problems show at once.
        let services = reader.read("services", as: [Service].self)
        ManifestLabels.reportProblems(labels, at: reader.path.appending("labels"), reader)
        Self.reportDuplicateNames(in: reader)
        guard let name else { return nil }
        self.name = name
        self.services = services ?? []
    }

    private static func reportDuplicateNames(in reader: ObjectReader) {
        guard case .array(let elements)? = reader.rawValue("services") else { return }
        var first: [String: Int] = [:]
        for (index, element) in elements.enumerated() {
            guard case .object(let object) = element, case .string(let name)? = object["name"] else { continue }
            if let earlier = first[name] {
                reader.report(at: reader.path.appending("services").appending(index).appending("name"), "\"\(name)\" is already the name of services[\(earlier)]; service names must be unique")
            } else {
                first[name] = index
            }
        }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("$schema", schemaLocation)
        writer.write("version", version)
        writer.write("name", name)
        writer.write("description", description)
        writer.write("labels", labels)
        writer.write("services", services)
    }
}
