/// A user or group, by name (looked up in the service's root filesystem) or by number.
public enum UserReference: ManifestValue, Hashable, CustomStringConvertible {
    case id(UInt32)
    case name(String)

    public static var schema: ValueSchema {
        ValueSchema(
            typeName: "string or integer",
            json: ["oneOf": [["type": "integer", "minimum": 0, "maximum": 4_294_967_294], ["type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_.-]*\\$?$|^[0-9]+$"]]])
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> UserReference? {
        switch json {
        case .integer(let number):
            // 4294967295 is (uid_t)-1, which the kernel reads as "leave unchanged".
            guard number >= 0, number < 4_294_967_295 else {
                issues.report(path(), "\(number) is not a valid id; write a number from 0 to 4294967294")
                return nil
            }
            return .id(UInt32(number))
        case .string(let text):
            if let number = UInt32(text), number < UInt32.max { return .id(number) }
            let bytes = Array(text.utf8)
            let valid = !bytes.isEmpty && bytes.count <= 32 && !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[0])
                && bytes[0] != UInt8(ascii: "-")
                && bytes.enumerated().allSatisfy { index, byte in
                    (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                        || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "_")
                        || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".")
                        || (byte == UInt8(ascii: "$") && index == bytes.count - 1)
                }
            guard valid else {
                issues.report(path(), "\"\(text)\" is not a user or group name; write a name such as \"nobody\" or a number such as 65534")
                return nil
            }
            return .name(text)
        default:
            issues.report(path(), "must be a name such as \"nobody\" or a number such as 65534, not \(json.kindDescription)")
            return nil
        }
    }

    public var json: JSONValue {
        switch self {
        case .id(let number): .integer(Int64(number))
        case .name(let name): .string(name)
        }
    }

    public var description: String {
        switch self {
        case .id(let number): String(number)
        case .name(let name): name
        }
    }
}

/// Where a service's files come from.
public enum RootFilesystem: ManifestValue, Hashable {
    /// The host's own filesystem, seen through a private mount namespace.
    case host
    /// A directory on the host that becomes the service's `/` (pivot_root).
    case directory(String)

    public static var schema: ValueSchema {
        ValueSchema(typeName: "`\"host\"` or absolute path", json: ["type": "string", "pattern": "^(host|/.*)$"])
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> RootFilesystem? {
        guard let text = String.read(json, at: path(), issues) else { return nil }
        if text == "host" { return .host }
        if let problem = NameRules.absolutePathProblem(text) {
            issues.report(path(), problem + " (or \"host\" for the host's filesystem)")
            return nil
        }
        if text == "/" {
            issues.report(path(), "\"/\" is the host's root; write \"host\" to run on the host's filesystem")
            return nil
        }
        return .directory(text)
    }

    public var json: JSONValue {
        switch self {
        case .host: .string("host")
        case .directory(let path): .string(path)
        }
    }
}
