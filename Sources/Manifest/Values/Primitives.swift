extension String: ManifestValue {
    public static var schema: ValueSchema { ValueSchema(typeName: "string", json: ["type": "string"]) }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> String? {
        guard case .string(let text) = json else {
            issues.report(path(), "must be a string, not \(json.kindDescription)\(quotingHint(json))")
            return nil
        }
        return text
    }

    public var json: JSONValue { .string(self) }

    /// Suggests the quoted form of a number or boolean written where text belongs.
    static func quotingHint(_ json: JSONValue) -> String {
        switch json {
        case .integer, .number, .bool: "; write \"\(JSONWriter.compact(json))\""
        default: ""
        }
    }
}

extension Int: ManifestValue {
    public static var schema: ValueSchema { ValueSchema(typeName: "integer", json: ["type": "integer"]) }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> Int? {
        switch json {
        case .integer(let number):
            return Int(number)
        case .number(let number):
            issues.report(path(), "must be a whole number, not \(number.compactText)")
        case .string(let text) where Int64(text) != nil:
            issues.report(path(), "must be a number, not a string; write \(text) without quotes")
        default:
            issues.report(path(), "must be an integer, not \(json.kindDescription)")
        }
        return nil
    }

    public var json: JSONValue { .integer(Int64(self)) }
}

extension Double: ManifestValue {
    public static var schema: ValueSchema { ValueSchema(typeName: "number", json: ["type": "number"]) }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> Double? {
        switch json {
        case .integer(let number):
            return Double(number)
        case .number(let number):
            return number
        case .string(let text) where Double(text) != nil:
            issues.report(path(), "must be a number, not a string; write \(text) without quotes")
        default:
            issues.report(path(), "must be a number, not \(json.kindDescription)")
        }
        return nil
    }

    public var json: JSONValue { self == rounded() && abs(self) < 1e15 ? .integer(Int64(self)) : .number(self) }
}

extension Bool: ManifestValue {
    public static var schema: ValueSchema { ValueSchema(typeName: "boolean", json: ["type": "boolean"]) }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> Bool? {
        switch json {
        case .bool(let flag):
            return flag
        case .string(let text) where text == "true" || text == "false":
            issues.report(path(), "must be a boolean, not a string; write \(text) without quotes")
        default:
            issues.report(path(), "must be true or false, not \(json.kindDescription)")
        }
        return nil
    }

    public var json: JSONValue { .bool(self) }
}

extension Array: ManifestValue where Element: ManifestValue {
    public static var schema: ValueSchema {
        let element = Element.schema
        return ValueSchema(
            typeName: "array of \(element.typeName)", json: ["type": "array", "items": .object(element.json)],
            references: element.references)
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> [Element]? {
        guard case .array(let elements) = json else {
            issues.report(path(), "must be an array, not \(json.kindDescription)\(json.isScalar ? "; write [\(JSONWriter.compact(json))]" : "")")
            return nil
        }
        var result: [Element] = []
        result.reserveCapacity(elements.count)
        var complete = true
        for (index, element) in elements.enumerated() {
            if let value = Element.read(element, at: path().appending(index), issues) {
                result.append(value)
            } else {
                complete = false
            }
        }
        return complete ? result : nil
    }

    public var json: JSONValue { .array(map(\.json)) }
}

/// A string-keyed map (env, labels). Keys are checked by the object that holds it, because
/// their rules differ (environment names, label keys).
public struct StringMap: ManifestValue, Sendable, Hashable, Sequence {
    /// Entries in the order they were written.
    public private(set) var entries: [(key: String, value: String)]

    public init(_ entries: [(key: String, value: String)] = []) {
        self.entries = entries
    }

    public subscript(key: String) -> String? {
        entries.first { $0.key == key }?.value
    }

    public var isEmpty: Bool { entries.isEmpty }

    public func makeIterator() -> IndexingIterator<[(key: String, value: String)]> {
        entries.makeIterator()
    }

    public static var schema: ValueSchema {
        ValueSchema(typeName: "map of string to string", json: ["type": "object", "additionalProperties": ["type": "string"]])
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> StringMap? {
        guard case .object(let object) = json else {
            issues.report(path(), "must be an object of names to strings, not \(json.kindDescription)")
            return nil
        }
        var entries: [(key: String, value: String)] = []
        var complete = true
        for member in object.members {
            if let text = String.read(member.value, at: path().appending(member.key), issues) {
                entries.append((member.key, text))
            } else {
                complete = false
            }
        }
        return complete ? StringMap(entries) : nil
    }

    public var json: JSONValue {
        .object(JSONObject(entries.map { JSONObject.Member($0.key, .string($0.value)) }))
    }

    public static func == (lhs: StringMap, rhs: StringMap) -> Bool {
        lhs.entries.count == rhs.entries.count && zip(lhs.entries, rhs.entries).allSatisfy { $0 == $1 }
    }

    public func hash(into hasher: inout Hasher) {
        for (key, value) in entries {
            hasher.combine(key)
            hasher.combine(value)
        }
    }
}

extension JSONValue {
    var isScalar: Bool {
        switch self {
        case .array, .object: false
        default: true
        }
    }
}

extension JSONValue {
    /// Schema literals: `["type": "string"]`.
    init(_ object: KeyValuePairs<String, JSONValue>) {
        self = .object(JSONObject(object.map { JSONObject.Member($0.key, $0.value) }))
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(elements.map { Member($0.0, $0.1) })
    }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(elements.map { JSONObject.Member($0.0, $0.1) }))
    }
}
