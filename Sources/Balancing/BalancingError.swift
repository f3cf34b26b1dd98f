/// One thing wrong with what a balancer was given, with the path to it.
public struct BalancingProblem: Hashable, Sendable, CustomStringConvertible {
    /// Where: `backends[2].weight`, `outlierDetection.baseEjection`.
    public var path: String
    /// What is wrong and what to do.
    public var message: String

    /// A problem at `path`.
    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    /// `backends[2].weight: …`
    public var description: String { "\(path): \(message)" }
}

/// Why a balancer refused a strategy name, a configuration or a backend set.
public enum BalancingError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A strategy name that is none of `Strategy.allCases`' raw values.
    case unknownStrategy(String)
    /// Every problem found in a configuration or a backend set, never just the first. The
    /// balancer kept what it had before.
    case invalid([BalancingProblem])

    /// A stable machine-readable code, for the API edge to map.
    public var code: String {
        switch self {
        case .unknownStrategy: "balancing.unknown-strategy"
        case .invalid: "balancing.invalid"
        }
    }

    public var description: String {
        switch self {
        case .unknownStrategy(let name):
            let valid = Strategy.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
            return "unknown load-balancing strategy \"\(name)\"; use one of \(valid)"
        case .invalid(let problems):
            return problems.map(\.description).joined(separator: "; ")
        }
    }
}
