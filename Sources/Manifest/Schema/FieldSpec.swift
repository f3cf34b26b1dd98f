/// One member of a manifest object: its name, type, default and documentation. The reader, the
/// JSON Schema generator and the field reference in docs/manifest.md all work from these.
/// A class, because the reader consults it for every value read and should not copy it.
public final class FieldSpec: Sendable {
    public let name: String
    public let schema: ValueSchema
    /// A missing required field is an error.
    public let isRequired: Bool
    /// The value used when the field is absent, as it would be written.
    public let defaultValue: JSONValue?
    /// For defaults that depend on other fields ("the service's name").
    public let defaultDescription: String?
    public let example: JSONValue?
    public let constraints: [Constraint]
    /// What the field does, in a sentence or two.
    public let doc: String
    /// The Swift type that reads it; the reader checks it to catch mismatched declarations.
    let valueType: ObjectIdentifier
    /// The default, read once when the spec is built rather than on every absent member; a
    /// `DefaultBox<Value>` of the declared type (``valueType``), so the reader unboxes it
    /// without a dynamic cast.
    let decodedDefault: (any AnyObject & Sendable)?

    public init<Value: ManifestValue>(
        _ name: String, _ type: Value.Type, required: Bool = false, default defaultValue: JSONValue? = nil,
        defaultDescription: String? = nil, example: JSONValue? = nil, constraints: [Constraint] = [], doc: String
    ) {
        self.name = name
        var schema = Value.schema
        for constraint in constraints { constraint.apply(to: &schema.json) }
        self.schema = schema
        self.isRequired = required
        self.defaultValue = defaultValue
        self.defaultDescription = defaultDescription
        self.example = example
        self.constraints = constraints
        self.doc = doc
        self.valueType = ObjectIdentifier(type)
        if let defaultValue {
            let issues = IssueCollector()
            let value = Value.read(defaultValue, at: JSONPath.root.appending(name), issues)
            precondition(issues.isEmpty && value != nil, "the default of \(name) does not read: \(issues.issues)")
            decodedDefault = value.map(DefaultBox.init)
        } else {
            decodedDefault = nil
        }
    }
}

/// The members of one kind of manifest object.
public struct ObjectSpec: Sendable {
    /// The name of its `$defs` entry and of its section in the docs.
    public var name: String
    public var doc: String
    public var fields: [FieldSpec]
    /// Extra schema keywords: e.g. "exactly one of http, tcp, exec".
    public var extraSchema: [JSONObject.Member]
    let fieldIndex: [String: Int]

    public init(_ name: String, doc: String, fields: [FieldSpec], extraSchema: [JSONObject.Member] = []) {
        self.name = name
        self.doc = doc
        self.fields = fields
        self.extraSchema = extraSchema
        var index: [String: Int] = [:]
        for (position, field) in fields.enumerated() {
            precondition(index[field.name] == nil, "\(name) declares \(field.name) twice")
            index[field.name] = position
        }
        self.fieldIndex = index
    }

    func field(_ name: String) -> FieldSpec? {
        fieldIndex[name].map { fields[$0] }
    }

    /// The position of a field; `hint` is where the caller expects it (readers read in order).
    func index(of name: String, hint: Int) -> Int? {
        if hint < fields.count, fields[hint].name == name { return hint }
        return fieldIndex[name]
    }
}

/// Holds a decoded default of a known type.
final class DefaultBox<Value: Sendable>: Sendable {
    let value: Value

    init(_ value: Value) {
        self.value = value
    }
}
