/// One problem found in a manifest: where it is and what to write instead.
public struct ManifestIssue: Sendable, Hashable, CustomStringConvertible {
    /// The value the problem is about.
    public var path: JSONPath
    /// A sentence that says what is wrong and how to fix it.
    public var message: String

    public init(path: JSONPath, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

/// Why a manifest was refused: a syntax error, or every problem the decoder and validator found.
public enum ManifestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The text is not JSON at all.
    case syntax(JSONParser.SyntaxError)
    /// The JSON does not describe a valid application; every problem found, in document order.
    case invalid([ManifestIssue])

    /// All problems, a syntax error reported at the document itself.
    public var issues: [ManifestIssue] {
        switch self {
        case .syntax(let error): [ManifestIssue(path: .root, message: "not valid JSON: \(error)")]
        case .invalid(let issues): issues
        }
    }

    public var description: String {
        issues.map(\.description).joined(separator: "\n")
    }
}

/// Collects issues while a manifest is read. A class so that nested readers share one list
/// without threading `inout` through every call.
public final class IssueCollector {
    /// Every problem reported so far, in the order reported.
    public private(set) var issues: [ManifestIssue] = []

    public init() {}

    /// Records a problem at `path`.
    public func report(_ path: JSONPath, _ message: String) {
        issues.append(ManifestIssue(path: path, message: message))
    }

    public var isEmpty: Bool { issues.isEmpty }

    /// Whether an issue was reported at `path`, inside it, or at a value that holds it and lies
    /// below `container` (issues at `container` or above it are about more than this value).
    /// Issues are rare, so a scan is cheap, and a valid manifest never scans at all.
    func hasProblem(at path: JSONPath, below container: JSONPath) -> Bool {
        guard !issues.isEmpty else { return false }
        let target = path.components
        let floor = container.components.count
        return issues.contains { issue in
            let reported = issue.path.components
            guard reported.count > floor else { return false }
            let shared = min(reported.count, target.count)
            return reported[..<shared] == target[..<shared]
        }
    }
}
