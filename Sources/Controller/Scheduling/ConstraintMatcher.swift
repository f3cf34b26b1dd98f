import Manifest

extension NodeRegistration {
    /// The value of a placement attribute on this node, or nil when the node has none (a label
    /// it does not carry). `node.memory` is in whole mebibytes ("8192" for 8Gi), so that
    /// `version` compares it as a number (a version part has at most 9 digits, bytes have more).
    public func attribute(_ name: String) -> String? {
        switch name {
        case "node.name": return self.name
        case "node.os": return attributes.os
        case "node.arch": return attributes.arch
        case "node.kernel": return attributes.kernel
        case "node.cpus": return String(attributes.cpus)
        case "node.memory": return String(attributes.memoryBytes >> 20)
        default:
            guard name.hasPrefix("label.") else { return nil }
            return labels[String(name.dropFirst("label.".count))]
        }
    }
}

extension PlacementConstraint {
    /// As people write it: `node.os = linux`, `label.zone in [a, b]`, `node.kernel version >= 5.10`.
    public var summary: String {
        switch `operator` {
        case .in, .notIn: "\(attribute) \(`operator`.rawValue) [\((values ?? []).joined(separator: ", "))]"
        case .equal, .notEqual, .regex, .version: "\(attribute) \(`operator`.rawValue) \(value ?? "")"
        }
    }
}

/// Decides whether nodes satisfy placement constraints, compiling each regular expression once
/// per scheduling pass rather than once per node.
struct ConstraintMatcher {
    private var expressions: [String: Regex<AnyRegexOutput>?] = [:]
    private var versions: [String: VersionConstraint?] = [:]

    /// A node without the attribute satisfies only the negative operators (`!=`, `not in`),
    /// as in Nomad: "not in the database role" holds for a node with no role at all.
    mutating func isSatisfied(_ constraint: PlacementConstraint, by node: NodeRegistration) -> Bool {
        guard let actual = node.attribute(constraint.attribute) else {
            return constraint.operator == .notEqual || constraint.operator == .notIn
        }
        switch constraint.operator {
        case .equal: return actual == constraint.value
        case .notEqual: return actual != constraint.value
        case .in: return (constraint.values ?? []).contains(actual)
        case .notIn: return !(constraint.values ?? []).contains(actual)
        case .regex:
            guard let expression = regex(constraint.value ?? "") else { return false }
            // The whole value must match (the manifest's documented rule), not a substring:
            // "web-1" must not match a node "web-10".
            return (try? expression.wholeMatch(in: actual)) != nil
        case .version:
            return version(constraint.value ?? "")?.isSatisfied(by: actual) ?? false
        }
    }

    /// Manifests are validated before they are applied, so a pattern that does not compile
    /// here matches nothing rather than crashing a replica.
    private mutating func regex(_ pattern: String) -> Regex<AnyRegexOutput>? {
        if let cached = expressions[pattern] { return cached }
        let compiled = try? Regex(pattern)
        expressions[pattern] = compiled
        return compiled
    }

    private mutating func version(_ text: String) -> VersionConstraint? {
        if let cached = versions[text] { return cached }
        let parsed = try? VersionConstraint.parse(text)
        versions[text] = parsed
        return parsed
    }
}
