/// A closed set of words (restart policies, namespace names): read with a "did you mean" and
/// listed as an `enum` in the schema.
public protocol ManifestEnum: ManifestValue, CaseIterable, RawRepresentable where RawValue == String {
    /// What the docs call the type ("restart policy").
    static var typeDescription: String { get }
}

extension ManifestEnum {
    public static var schema: ValueSchema {
        ValueSchema(typeName: "one of " + allCases.map { "`\($0.rawValue)`" }.joined(separator: ", "),
                    json: ["type": "string", "enum": .array(allCases.map { .string($0.rawValue) })])
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> Self? {
        let names = allCases.map(\.rawValue)
        guard case .string(let text) = json else {
            issues.report(path(), "must be a string, one of \(names.joined(separator: ", ")), not \(json.kindDescription)")
            return nil
        }
        if let value = Self(rawValue: text) { return value }
        issues.report(path(), "\"\(text)\" is not a valid \(typeDescription)\(Suggestion.hint(for: text, among: names)) (write one of: \(names.joined(separator: ", ")))")
        return nil
    }

    public var json: JSONValue { .string(rawValue) }
}
