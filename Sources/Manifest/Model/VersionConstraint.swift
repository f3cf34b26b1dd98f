/// A version requirement such as `">= 6.1, < 7"`, for the `version` constraint operator.
///
/// Versions compare by their leading dot-separated numbers (missing parts count as 0); any
/// suffix (`-13-amd64` in a kernel release) is ignored, because node attributes like kernel
/// releases are not semantic versions and their suffixes do not order.
public struct VersionConstraint: Sendable, Hashable, CustomStringConvertible {
    public enum Comparison: String, Sendable, CaseIterable {
        case greaterOrEqual = ">=", lessOrEqual = "<=", notEqual = "!=", pessimistic = "~>", greater = ">", less = "<", equal = "="
    }

    public struct Clause: Sendable, Hashable {
        public var comparison: Comparison
        public var version: [Int]
        /// The version as written, for messages and ~> (which depends on its length).
        public var text: String
    }

    public var clauses: [Clause]

    public var description: String {
        clauses.map { "\($0.comparison.rawValue) \($0.text)" }.joined(separator: ", ")
    }

    /// Parses the requirement; the error says what to write instead.
    public static func parse(_ text: String) throws(DurationText.ParseError) -> VersionConstraint {
        var clauses: [Clause] = []
        for rawClause in text.split(separator: ",", omittingEmptySubsequences: false) {
            var clause = rawClause.drop { $0 == " " }
            while clause.last == " " { clause = clause.dropLast() }
            guard !clause.isEmpty else {
                throw DurationText.ParseError(message: "\"\(text)\" has an empty part; write clauses such as \">= 6.1, < 7\"")
            }
            var comparison = Comparison.equal
            for candidate in Comparison.allCases where clause.hasPrefix(candidate.rawValue) {
                comparison = candidate
                clause = clause.dropFirst(candidate.rawValue.count)
                break
            }
            let versionText = String(clause.drop { $0 == " " })
            guard let version = parseVersion(versionText) else {
                throw DurationText.ParseError(message: "\"\(text)\": \"\(versionText)\" is not a version; write numbers separated by dots, e.g. \">= 6.1\"")
            }
            clauses.append(Clause(comparison: comparison, version: version, text: versionText))
        }
        return VersionConstraint(clauses: clauses)
    }

    /// The leading numeric parts of a version string, or nil when it starts with none.
    public static func parseVersion(_ text: String) -> [Int]? {
        var text = Substring(text)
        if text.hasPrefix("v") { text = text.dropFirst() }
        let numeric = text.prefix { $0.isASCII && ($0.isNumber || $0 == ".") }
        let parts = numeric.split(separator: ".", omittingEmptySubsequences: false)
        guard !numeric.isEmpty, !numeric.hasSuffix("."), parts.allSatisfy({ !$0.isEmpty && $0.count < 10 }) else { return nil }
        let rest = text.dropFirst(numeric.count)
        guard rest.isEmpty || rest.first == "-" || rest.first == "+" || rest.first == "_" || rest.first == "~" else { return nil }
        return parts.compactMap { Int($0) }
    }

    /// Whether a version satisfies every clause.
    public func isSatisfied(by versionText: String) -> Bool {
        guard let version = Self.parseVersion(versionText) else { return false }
        return clauses.allSatisfy { clause in
            let order = Self.compare(version, clause.version)
            switch clause.comparison {
            case .equal: return order == 0
            case .notEqual: return order != 0
            case .greater: return order > 0
            case .greaterOrEqual: return order >= 0
            case .less: return order < 0
            case .lessOrEqual: return order <= 0
            case .pessimistic:
                // "~> 6.1" means >= 6.1 and < 7; "~> 6.1.2" means >= 6.1.2 and < 6.2 (as Nomad and Bundler).
                guard order >= 0 else { return false }
                var upper = Array(clause.version.dropLast())
                if upper.isEmpty { return true }
                upper[upper.count - 1] += 1
                return Self.compare(version, upper) < 0
            }
        }
    }

    static func compare(_ a: [Int], _ b: [Int]) -> Int {
        for index in 0..<max(a.count, b.count) {
            let left = index < a.count ? a[index] : 0
            let right = index < b.count ? b[index] : 0
            if left != right { return left < right ? -1 : 1 }
        }
        return 0
    }
}
