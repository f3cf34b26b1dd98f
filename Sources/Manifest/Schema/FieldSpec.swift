/// One member of a manifest object: its name, type, default and documentation. The reader, the
/// JSON Schema generator and the field reference in docs/manifest.md all work from these.
public struct FieldSpec: Sendable {
    public var name: String
    public var schema: ValueSchema
    /// A missing required field is an error.
    public var isRequired: Bool
    /// The value used when the field is absent, as it would be written.
    public var defaultValue: JSONValue?
    /// For defaults that depend on other fields ("the service's name").
    public var defaultDescription: String?
    public var example: JSONValue?
    public var constraints: [Constraint]
    /// What the field does, in a sentence or two.
    public var doc: String
    /// The Swift type that reads it; the reader checks it to catch mismatched declarations.
    let valueType: ObjectIdentifier

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
}
