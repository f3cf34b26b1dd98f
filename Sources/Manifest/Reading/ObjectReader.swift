/// Reads the members of one JSON object against its ``ObjectSpec``: applies defaults and
/// constraints, reports missing required members, and afterwards reports every member the
/// spec does not know, with a "did you mean" for near misses.
public final class ObjectReader {
    /// Where the object stands in the manifest.
    public let path: JSONPath
    let object: JSONObject
    let spec: ObjectSpec
    let issues: IssueCollector
    /// What is known of one declared field.
    private struct Slot {
        /// The written value, if any.
        var value: JSONValue?
        /// Asked for: a declared member that is present but never read is a bug.
        var isRead = false
        /// Written but unreadable; checks across members skip it.
        var isInvalid = false
    }

    /// One slot per declared field, by position; resolved once, so that a read costs no search.
    private var slots: [Slot]
    /// Members the spec does not declare, in document order.
    private var unknownMembers: [String] = []
    /// Readers read in spec order, so the next field is usually the one after the last.
    private var nextField = 0

    init(_ object: JSONObject, at path: JSONPath, spec: ObjectSpec, _ issues: IssueCollector) {
        self.object = object
        self.path = path
        self.spec = spec
        self.issues = issues
        slots = Array(repeating: Slot(), count: spec.fields.count)
        var hint = 0
        for member in object.members {
            if let index = spec.index(of: member.key, hint: hint) {
                slots[index].value = member.value
                hint = index + 1
            } else {
                unknownMembers.append(member.key)
            }
        }
    }

    private func fieldIndex(_ key: String) -> Int {
        guard let index = spec.index(of: key, hint: nextField) else {
            preconditionFailure("\(spec.name) reads \(key), which its spec does not declare")
        }
        return index
    }

    /// Whether the member was written at all (as opposed to defaulted).
    public func isPresent(_ key: String) -> Bool {
        slots[fieldIndex(key)].value != nil
    }

    /// The member's value; its spec default when absent; nil when absent without a default
    /// (reported if required) or invalid (reported).
    public func read<Value: ManifestValue>(_ key: String, as type: Value.Type = Value.self) -> Value? {
        let index = fieldIndex(key)
        nextField = index + 1
        let field = spec.fields[index]
        precondition(field.valueType == ObjectIdentifier(type), "\(spec.name).\(key) is read as \(type), declared otherwise")
        slots[index].isRead = true
        guard let json = slots[index].value else {
            if field.isRequired {
                issues.report(path.appending(key), "is required\(field.example.map { "; for example \(JSONWriter.compact($0))" } ?? "")")
                return nil
            }
            guard let box = field.decodedDefault else { return nil }
            // The type was checked against `valueType` above.
            return unsafeDowncast(box, to: DefaultBox<Value>.self).value
        }
        guard let value = Value.read(json, at: self.path.appending(key), issues) else {
            slots[index].isInvalid = true
            return nil
        }
        for constraint in field.constraints { constraint.check(json, at: self.path.appending(key), issues) }
        // A value that breaks a constraint is still returned, so that cross-field checks can run.
        return value
    }

    /// The written value of a member, unread.
    func rawValue(_ key: String) -> JSONValue? {
        slots[fieldIndex(key)].value
    }

    /// Whether the member was written but is not valid: it could not be read, or a problem was
    /// reported about it or inside it (a broken constraint, a bad nested member). A check across
    /// members skips such a member: comparing with it would only repeat the problem already
    /// reported (`replicas: -1` must not also give "canaries: 0 is more than replicas (-1)").
    public func isInvalid(_ key: String) -> Bool {
        slots[fieldIndex(key)].isInvalid || hasProblem(at: path.appending(key))
    }

    /// Whether a problem was reported about the value at `path`, which lies below this object:
    /// at it, inside it, or at a member of this object that holds it (an unreadable `network`
    /// leaves `network.ports` unknown). The nested form of ``isInvalid(_:)``.
    public func hasProblem(at path: JSONPath) -> Bool {
        issues.hasProblem(at: path, below: self.path)
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
        for index in slots.indices where slots[index].value != nil {
            precondition(slots[index].isRead, "\(spec.name) declares \(spec.fields[index].name) but never reads it")
        }
        guard !unknownMembers.isEmpty else { return }
        let names = spec.fields.map(\.name)
        for key in unknownMembers {
            let hint = Suggestion.hint(for: key, among: names)
            issues.report(
                path.appending(key),
                hint.isEmpty ? "unknown field; remove it (\(spec.name) has: \(names.joined(separator: ", ")))" : "unknown field\(hint)")
        }
    }
}
