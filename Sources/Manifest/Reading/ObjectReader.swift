/// Reads the members of one JSON object against its ``ObjectSpec``: applies defaults and
/// constraints, reports missing required members, and afterwards reports every member the
/// spec does not know, with a "did you mean" for near misses.
public final class ObjectReader {
    /// Where the object stands in the manifest.
    public let path: JSONPath
    let object: JSONObject
    let spec: ObjectSpec
    let issues: IssueCollector
    /// Members that were written but could not be read; checks across members skip them.
    private(set) var invalidKeys: Set<String> = []
    /// Members asked for; a declared member that is present but never asked for is a bug.
    private var readKeys: Set<String> = []

    init(_ object: JSONObject, at path: JSONPath, spec: ObjectSpec, _ issues: IssueCollector) {
        self.object = object
        self.path = path
        self.spec = spec
        self.issues = issues
    }

    /// Whether the member was written at all (as opposed to defaulted).
    public func isPresent(_ key: String) -> Bool {
        object[key] != nil
    }

    /// The member's value; its spec default when absent; nil when absent without a default
    /// (reported if required) or invalid (reported).
    public func read<Value: ManifestValue>(_ key: String, as type: Value.Type = Value.self) -> Value? {
        guard let field = spec.field(key) else {
            preconditionFailure("\(spec.name) reads \(key), which its spec does not declare")
        }
        precondition(field.valueType == ObjectIdentifier(type), "\(spec.name).\(key) is read as \(type), declared otherwise")
        readKeys.insert(key)
        let memberPath = path.appending(key)
        guard let json = object[key] else {
            if field.isRequired {
                issues.report(memberPath, "is required\(field.example.map { "; for example \(JSONWriter.compact($0))" } ?? "")")
                return nil
            }
            guard let defaultValue = field.defaultValue else { return nil }
            let defaults = IssueCollector()
            let value = Value.read(defaultValue, at: memberPath, defaults)
            precondition(defaults.isEmpty, "the default of \(spec.name).\(key) does not read: \(defaults.issues)")
            return value
        }
        guard let value = Value.read(json, at: memberPath, issues) else {
            invalidKeys.insert(key)
            return nil
        }
        for constraint in field.constraints { constraint.check(json, at: memberPath, issues) }
        // A value that breaks a constraint is still returned, so that cross-field checks can run.
        return value
    }

    /// Whether the member was written but could not be read (its problem is already reported).
    public func isInvalid(_ key: String) -> Bool {
        invalidKeys.contains(key)
    }

    /// Reports a problem with a member of this object (for checks across members).
    public func report(_ key: String, _ message: String) {
        issues.report(path.appending(key), message)
    }

    /// Reports a problem with a path below this object.
    public func report(at path: JSONPath, _ message: String) {
        issues.report(path, message)
    }

    func reportUnknownMembers() {
        for member in object.members where spec.field(member.key) != nil {
            precondition(readKeys.contains(member.key), "\(spec.name) declares \(member.key) but never reads it")
        }
        for member in object.members where spec.field(member.key) == nil {
            let names = spec.fields.map(\.name)
            let hint = Suggestion.hint(for: member.key, among: names)
            issues.report(
                path.appending(member.key),
                hint.isEmpty ? "unknown field; remove it (\(spec.name) has: \(names.joined(separator: ", ")))" : "unknown field\(hint)")
        }
    }
}
