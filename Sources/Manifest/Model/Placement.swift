/// Node attributes a placement rule can name, besides `label.<key>`.
public enum NodeAttribute {
    /// Built-in attributes every agent reports.
    public static let builtIn: [String] = ["node.name", "node.os", "node.arch", "node.kernel", "node.cpus", "node.memory"]

    /// Why `name` is not an attribute, or nil when it is one.
    static func problem(_ name: String) -> String? {
        if builtIn.contains(name) { return nil }
        if name.hasPrefix("label.") {
            return name.count > "label.".count ? nil : "\"label.\" needs a label key, e.g. \"label.zone\""
        }
        let suggestion = Suggestion.closest(to: name, among: builtIn) ?? (name.contains(".") ? nil : "label.\(name)")
        return "\"\(name)\" is not a node attribute\(suggestion.map { "; did you mean \"\($0)\"?" } ?? ""); use one of \(builtIn.joined(separator: ", ")) or label.<key>"
    }
}

/// A rule a node must satisfy to run the service.
public struct PlacementConstraint: ManifestObject, Hashable {
    public var attribute: String
    public var `operator`: ConstraintOperator
    public var value: String?
    public var values: [String]?

    public init(attribute: String, operator: ConstraintOperator, value: String? = nil, values: [String]? = nil) {
        self.attribute = attribute
        self.operator = `operator`
        self.value = value
        self.values = values
    }

    public static let spec = ObjectSpec(
        "PlacementConstraint",
        doc: "A rule on a node attribute. `=`, `!=`, `regex` and `version` take `value`; `in` and `not in` take `values`.",
        fields: [
            FieldSpec("attribute", String.self, required: true, example: "label.zone", doc: "`node.name`, `node.os` (`linux`), `node.arch` (`x86_64`, `aarch64`), `node.kernel` (the kernel release, e.g. `6.1.0-13-amd64`), `node.cpus` (a count), `node.memory` (whole MiB), or `label.<key>` for a node label. Numbers compare with `version` (e.g. `\">= 4096\"` for `node.memory`)."),
            FieldSpec("operator", ConstraintOperator.self, required: true, example: "=", doc: "`=`, `!=`, `in`, `not in`, `regex` (the whole value must match) or `version` (e.g. `\">= 6.1, < 7\"`)."),
            FieldSpec("value", String.self, example: "eu-1", doc: "The value to compare with."),
            FieldSpec("values", [String].self, example: ["eu-1", "eu-2"], constraints: [.nonEmpty], doc: "The set of values, for `in` and `not in`."),
        ])

    public init?(reading reader: ObjectReader) {
        let attribute = reader.read("attribute", as: String.self)
        let op = reader.read("operator", as: ConstraintOperator.self)
        value = reader.read("value")
        values = reader.read("values")
        if let attribute, let problem = NodeAttribute.problem(attribute) { reader.report("attribute", problem) }
        if let op {
            switch op {
            case .in, .notIn:
                if reader.isPresent("value") {
                    reader.report("value", "\"\(op.rawValue)\" compares with a set; write \"values\": [...] instead of \"value\"")
                } else if !reader.isPresent("values") {
                    reader.report("values", "is required with \"\(op.rawValue)\"; write e.g. \"values\": [\"a\", \"b\"]")
                }
            case .equal, .notEqual, .regex, .version:
                if reader.isPresent("values") {
                    reader.report("values", "applies only to \"in\" and \"not in\"; write a single \"value\" for \"\(op.rawValue)\"")
                } else if !reader.isPresent("value") {
                    reader.report("value", "is required with \"\(op.rawValue)\"")
                }
            }
            if let value {
                if op == .regex {
                    do {
                        _ = try Regex(value)
                    } catch {
                        reader.report("value", "\"\(value)\" is not a valid regular expression: \(error)")
                    }
                } else if op == .version {
                    do throws(DurationText.ParseError) {
                        _ = try VersionConstraint.parse(value)
                    } catch {
                        reader.report("value", error.message)
                    }
                }
            }
        }
        guard let attribute, let op else { return nil }
        self.attribute = attribute
        self.operator = op
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("attribute", attribute)
        writer.write("operator", `operator`)
        writer.write("value", value)
        writer.write("values", values)
    }
}

/// Spread instances evenly over the values of a node attribute (e.g. zones).
public struct Spread: ManifestObject, Hashable {
    public var attribute: String
    public var weight: Int

    public init(attribute: String, weight: Int = 100) {
        self.attribute = attribute
        self.weight = weight
    }

    public static let spec = ObjectSpec(
        "Spread", doc: "Spread instances evenly over the values of a node attribute.",
        fields: [
            FieldSpec("attribute", String.self, required: true, example: "label.zone", doc: "The attribute whose values instances are spread over."),
            FieldSpec("weight", Int.self, default: 100, constraints: [.integerRange(1...100)], doc: "How much this spread counts against other placement scores."),
        ])

    public init?(reading reader: ObjectReader) {
        let attribute = reader.read("attribute", as: String.self)
        weight = reader.read("weight") ?? 100
        guard let attribute else { return nil }
        self.attribute = attribute
        if let problem = NodeAttribute.problem(attribute) { reader.report("attribute", problem) }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("attribute", attribute)
        writer.write("weight", weight)
    }
}

/// Where the scheduler may put the service's instances.
public struct Placement: ManifestObject, Hashable {
    public var constraints: [PlacementConstraint]
    public var spread: [Spread]
    public var distinctNodes: Bool

    public init(constraints: [PlacementConstraint] = [], spread: [Spread] = [], distinctNodes: Bool = false) {
        self.constraints = constraints
        self.spread = spread
        self.distinctNodes = distinctNodes
    }

    public static let spec = ObjectSpec(
        "Placement", doc: "Where instances may run.",
        fields: [
            FieldSpec("constraints", [PlacementConstraint].self, default: [], example: [["attribute": "node.os", "operator": "=", "value": "linux"]], doc: "Rules every chosen node satisfies."),
            FieldSpec("spread", [Spread].self, default: [], example: [["attribute": "label.zone"]], doc: "Attributes to spread instances over."),
            FieldSpec("distinctNodes", Bool.self, default: false, doc: "At most one instance of the service per node."),
        ])

    public init?(reading reader: ObjectReader) {
        constraints = reader.read("constraints") ?? []
        spread = reader.read("spread") ?? []
        distinctNodes = reader.read("distinctNodes") ?? false
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("constraints", constraints)
        writer.write("spread", spread)
        writer.write("distinctNodes", distinctNodes)
    }
}
