/// How a kind of value is described: a JSON Schema fragment for editors and `deployctl schema`,
/// and a short type name for the field reference in docs/manifest.md.
public struct ValueSchema: Sendable {
    /// What the docs call this type ("duration", "array of string", "HealthCheck").
    public var typeName: String
    /// The JSON Schema (draft 2020-12) fragment; object types are `$ref`s into `$defs`.
    public var json: JSONObject
    /// Object specs this schema refers to, so that the generator can emit their `$defs`.
    public var references: [ObjectSpec]

    public init(typeName: String, json: JSONObject, references: [ObjectSpec] = []) {
        self.typeName = typeName
        self.json = json
        self.references = references
    }
}

/// A refinement a field adds to its type: checked when the manifest is read, and stated in the
/// schema so that editors flag the same mistakes.
public enum Constraint: Sendable {
    /// An integer within these bounds.
    case integerRange(ClosedRange<Int64>)
    /// A number greater than `above` (exclusive) and at most `atMost`.
    case numberRange(above: Double, atMost: Double)
    /// A duration strictly greater than zero.
    case positiveDuration
    /// A size of at least this many bytes.
    case sizeAtLeast(Int64, text: String)
    /// An array, object or string with at least one element, member or character.
    case nonEmpty
    /// A lowercase RFC 1123 label of at most this many characters.
    case dnsLabel(maxLength: Int)
    /// A host name.
    case hostname
    /// An absolute path in normal form.
    case absolutePath

    func check(_ value: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) {
        switch self {
        case .integerRange(let range):
            if case .integer(let number) = value, !range.contains(number) {
                issues.report(path(), "\(number) is out of range; write a number from \(range.lowerBound) to \(range.upperBound)")
            }
        case .numberRange(let above, let atMost):
            let number: Double? =
                switch value {
                case .integer(let integer): Double(integer)
                case .number(let double): double
                default: nil
                }
            if let number, !(number > above && number <= atMost) {
                issues.report(path(), "\(value.textForMessage) is out of range; write a number above \(above.compactText) and at most \(atMost.compactText)")
            }
        case .positiveDuration:
            if case .string(let text) = value, let duration = try? DurationText.parse(text), duration <= .zero {
                issues.report(path(), "\"\(text)\" must be longer than zero; write e.g. \"5s\"")
            }
        case .sizeAtLeast(let minimum, let minimumText):
            if let bytes = ByteSize.bytes(of: value), bytes < minimum {
                issues.report(path(), "\(value.textForMessage) is below the minimum of \(minimumText); write at least \"\(minimumText)\"")
            }
        case .nonEmpty:
            let isEmpty: Bool =
                switch value {
                case .array(let elements): elements.isEmpty
                case .object(let object): object.members.isEmpty
                case .string(let text): text.isEmpty
                default: false
                }
            if isEmpty { issues.report(path(), "must not be empty") }
        case .dnsLabel(let maxLength):
            if case .string(let text) = value, let problem = NameRules.dnsLabelProblem(text, maxLength: maxLength) {
                issues.report(path(), problem)
            }
        case .hostname:
            if case .string(let text) = value, let problem = NameRules.hostnameProblem(text) { issues.report(path(), problem) }
        case .absolutePath:
            if case .string(let text) = value, let problem = NameRules.absolutePathProblem(text) { issues.report(path(), problem) }
        }
    }

    func apply(to schema: inout JSONObject) {
        switch self {
        case .integerRange(let range):
            schema.append("minimum", .integer(range.lowerBound))
            schema.append("maximum", .integer(range.upperBound))
        case .numberRange(let above, let atMost):
            schema.append("exclusiveMinimum", .number(above))
            schema.append("maximum", .number(atMost))
        case .positiveDuration:
            // A pattern cannot say "not all zero" readably; the description carries it.
            break
        case .sizeAtLeast(let minimum, _):
            // Only the integer form can be bounded in JSON Schema.
            schema.members = schema.members.map { member in
                guard member.key == "oneOf", case .array(var options) = member.value else { return member }
                for index in options.indices {
                    if case .object(var option) = options[index], option["type"] == "integer" {
                        option.append("minimum", .integer(minimum))
                        options[index] = .object(option)
                    }
                }
                return JSONObject.Member("oneOf", .array(options))
            }
        case .nonEmpty:
            switch schema["type"] {
            case "array": schema.append("minItems", 1)
            case "object": schema.append("minProperties", 1)
            case "string": schema.append("minLength", 1)
            default: break
            }
        case .dnsLabel(let maxLength):
            schema.append("pattern", "^[a-z]([-a-z0-9]*[a-z0-9])?$")
            schema.append("maxLength", .integer(Int64(maxLength)))
        case .hostname:
            schema.append("pattern", "^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$")
            schema.append("maxLength", 64)
        case .absolutePath:
            schema.append("pattern", "^/")
        }
    }
}

extension JSONValue {
    /// The value as it would be written in the manifest, for quoting in messages.
    var textForMessage: String { JSONWriter.compact(self) }
}

extension Double {
    /// `0.5`, `1024` — without a trailing `.0`.
    var compactText: String {
        self == rounded() && abs(self) < 1e15 ? String(Int64(self)) : String(self)
    }
}
