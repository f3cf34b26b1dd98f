import Raft

/// The words after a scenario command: positional values and `key=value` pairs, where a value
/// may be a list written `(1,2,3)`.
struct ScenarioArguments {
    var positional: [String] = []
    var named: [String: String] = [:]

    init(_ words: some Sequence<Substring>) {
        for word in words {
            if let equals = word.firstIndex(of: "=") {
                named[String(word[..<equals])] = String(word[word.index(after: equals)...])
            } else {
                positional.append(String(word))
            }
        }
    }

    func nodeID(at position: Int) throws -> NodeID {
        guard position < positional.count, let id = NodeID(positional[position]) else {
            throw ScenarioError(message: "expected a node id at position \(position + 1)")
        }
        return id
    }

    /// Every positional value, as node ids.
    func nodeIDs() throws -> [NodeID] {
        try positional.indices.map { try nodeID(at: $0) }
    }

    func int(_ key: String, default value: Int) throws -> Int {
        guard let text = named[key] else { return value }
        guard let parsed = Int(text) else { throw ScenarioError(message: "\(key)=\(text) is not a number") }
        return parsed
    }

    func list(_ key: String) throws -> [UInt64]? {
        guard let text = named[key] else { return nil }
        let inner = text.trimming(["(", ")"])
        if inner.isEmpty { return [] }
        return try inner.split(separator: ",").map {
            guard let value = UInt64($0) else { throw ScenarioError(message: "\(key)=\(text) is not a list of numbers") }
            return value
        }
    }
}

extension String {
    func trimming(_ characters: Set<Character>) -> String {
        String(drop(while: characters.contains).reversed().drop(while: characters.contains).reversed())
    }
}
