/// A kind of value a manifest can hold: how to read it from JSON (reporting problems at its
/// path), how to write it back, and how to describe it in the schema.
public protocol ManifestValue: Sendable, Equatable {
    /// The schema of every value of this type.
    static var schema: ValueSchema { get }
    /// Reads `json`, or reports why it cannot and returns nil.
    static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> Self?
    /// The value as JSON, such that reading it back gives an equal value.
    var json: JSONValue { get }
}

/// A manifest object: read member by member through an ``ObjectReader`` that checks for
/// unknown members against its ``ObjectSpec``.
public protocol ManifestObject: ManifestValue {
    /// Its members, their types, defaults and documentation.
    static var spec: ObjectSpec { get }
    /// Builds the value from the reader, or nil when a required part is missing or invalid
    /// (the reader has reported why).
    init?(reading reader: ObjectReader)
    /// Writes the members back in the order of ``spec``.
    func write(to writer: inout ObjectWriter)
}

extension ManifestObject {
    public static var schema: ValueSchema {
        ValueSchema(typeName: spec.name, json: JSONObject([.init("$ref", .string("#/$defs/\(spec.name)"))]), references: [spec])
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> Self? {
        guard case .object(let object) = json else {
            issues.report(path(), "must be an object (\(spec.name)), not \(json.kindDescription)")
            return nil
        }
        let reader = ObjectReader(object, at: path(), spec: spec, issues)
        let value = Self(reading: reader)
        reader.reportUnknownMembers()
        return value
    }

    public var json: JSONValue {
        var writer = ObjectWriter()
        write(to: &writer)
        return .object(writer.object)
    }
}

/// Builds an object's JSON, leaving out absent optionals.
public struct ObjectWriter {
    public private(set) var object = JSONObject()

    public mutating func write<Value: ManifestValue>(_ key: String, _ value: Value?) {
        if let value { object.append(key, value.json) }
    }
}
