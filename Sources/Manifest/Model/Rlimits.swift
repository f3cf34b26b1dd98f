/// Resource limits (setrlimit(2)) by their lowercase names.
public enum RlimitName: String, CaseIterable, Sendable, Hashable {
    case cpu, fsize, data, stack, core, rss, nproc, nofile, memlock, `as`, locks, sigpending, msgqueue, nice, rtprio, rttime

    /// The `RLIMIT_*` resource number on Linux (asm-generic/resource.h).
    public var resource: Int32 {
        Int32(Self.allCases.firstIndex(of: self) ?? 0)
    }

    var doc: String {
        switch self {
        case .cpu: "CPU time in seconds."
        case .fsize: "Largest file the service may create, in bytes."
        case .data: "Data segment size, in bytes."
        case .stack: "Stack size, in bytes."
        case .core: "Core dump size, in bytes (0 disables core dumps)."
        case .rss: "Resident set size (ignored by current kernels)."
        case .nproc: "Processes and threads the service's user may have."
        case .nofile: "Open file descriptors."
        case .memlock: "Locked memory, in bytes."
        case .as: "Address space, in bytes."
        case .locks: "File locks."
        case .sigpending: "Pending signals."
        case .msgqueue: "Bytes in POSIX message queues."
        case .nice: "Ceiling of the nice value (20 - value)."
        case .rtprio: "Real-time priority ceiling."
        case .rttime: "Real-time CPU time between blocking calls, in microseconds."
        }
    }
}

/// One limit: soft (what applies) and hard (how far the service may raise it).
/// `nil` means unlimited (RLIM_INFINITY).
public struct RlimitValue: ManifestValue, Hashable {
    public var soft: UInt64?
    public var hard: UInt64?

    public init(soft: UInt64?, hard: UInt64?) {
        self.soft = soft
        self.hard = hard
    }

    public static var schema: ValueSchema {
        let single: JSONValue = ["oneOf": [["type": "integer", "minimum": 0], ["const": "unlimited"]]]
        return ValueSchema(
            typeName: "integer, `\"unlimited\"` or `{\"soft\", \"hard\"}`",
            json: ["oneOf": [single, ["type": "object", "properties": ["soft": single, "hard": single], "required": ["soft", "hard"], "additionalProperties": false]]])
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> RlimitValue? {
        if case .object(let object) = json {
            for member in object.members where member.key != "soft" && member.key != "hard" {
                issues.report(path().appending(member.key), "unknown field\(Suggestion.hint(for: member.key, among: ["soft", "hard"])); a limit has soft and hard")
            }
            guard let softJSON = object["soft"], let hardJSON = object["hard"] else {
                issues.report(path(), "needs both \"soft\" and \"hard\", e.g. {\"soft\": 1024, \"hard\": 4096}")
                return nil
            }
            guard case .some(let soft) = readLimit(softJSON, at: path().appending("soft"), issues),
                case .some(let hard) = readLimit(hardJSON, at: path().appending("hard"), issues)
            else { return nil }
            if (hard ?? .max) < (soft ?? .max) {
                issues.report(path().appending("soft"), "\(softJSON.textForMessage) is above the hard limit \(hardJSON.textForMessage); the soft limit may not exceed the hard one")
            }
            return RlimitValue(soft: soft, hard: hard)
        }
        guard case .some(let limit) = readLimit(json, at: path(), issues) else { return nil }
        return RlimitValue(soft: limit, hard: limit)
    }

    /// `.some(nil)` is unlimited; `nil` is invalid (reported).
    private static func readLimit(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> UInt64?? {
        switch json {
        case .integer(let number) where number >= 0: return .some(UInt64(number))
        case .string("unlimited"), .string("infinity"): return .some(nil)
        case .string(let text) where UInt64(text) != nil:
            issues.report(path(), "must be a number, not a string; write \(text) without quotes")
        default:
            issues.report(path(), "must be a number of zero or more or \"unlimited\", not \(json.textForMessage)")
        }
        return nil
    }

    public var json: JSONValue {
        let soft = soft.map { JSONValue.integer(Int64(clamping: $0)) } ?? "unlimited"
        let hard = hard.map { JSONValue.integer(Int64(clamping: $0)) } ?? "unlimited"
        return soft == hard ? soft : ["soft": soft, "hard": hard]
    }
}

/// The limits a service sets; limits it does not name are inherited from the agent.
public struct Rlimits: ManifestObject, Hashable {
    public var limits: [RlimitName: RlimitValue]

    public init(_ limits: [RlimitName: RlimitValue] = [:]) {
        self.limits = limits
    }

    public static let spec = ObjectSpec(
        "Rlimits", doc: "Resource limits (setrlimit(2)). Each is a number (soft and hard alike), `\"unlimited\"`, or `{\"soft\": N, \"hard\": M}`. Limits not named are inherited from the agent.",
        fields: RlimitName.allCases.map { name in
            FieldSpec(name.rawValue, RlimitValue.self, example: name == .nofile ? ["soft": 1024, "hard": 65536] : nil, doc: name.doc)
        })

    public init?(reading reader: ObjectReader) {
        var limits: [RlimitName: RlimitValue] = [:]
        for name in RlimitName.allCases {
            if let value = reader.read(name.rawValue, as: RlimitValue.self) { limits[name] = value }
        }
        self.limits = limits
    }

    public func write(to writer: inout ObjectWriter) {
        for name in RlimitName.allCases { writer.write(name.rawValue, limits[name]) }
    }
}
