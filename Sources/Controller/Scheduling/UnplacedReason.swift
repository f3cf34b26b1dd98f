/// Words why no node could take an instance, from each node's first failed check, the way
/// Nomad's placement failure summary does ("constraint filtered 3 nodes"), but as one sentence.
enum UnplacedReason {
    /// `problems` has one entry per node.
    static func describe(_ problems: [Infeasibility]) -> String {
        guard !problems.isEmpty else { return "no nodes are registered" }
        let statuses = problems.compactMap { problem -> NodeStatus? in
            if case .notReady(let status) = problem { return status }
            return nil
        }
        if statuses.count == problems.count {
            let down = statuses.filter { $0 == .down }.count
            let draining = statuses.count - down
            let parts = [down > 0 ? "\(down) down" : nil, draining > 0 ? "\(draining) draining" : nil].compactMap { $0 }
            return "no node is ready (\(parts.joined(separator: ", ")))"
        }
        var groups: [(problem: Infeasibility, count: Int)] = []
        for problem in problems {
            if let index = groups.firstIndex(where: { $0.problem == problem }) {
                groups[index].count += 1
            } else {
                groups.append((problem, 1))
            }
        }
        if groups.count == 1 { return groups[0].problem.everywhere(nodeCount: problems.count) }
        // Most common first; ties keep the order of the first node (by name) that showed them.
        let ordered = groups.enumerated().sorted { ($1.element.count, $0.offset) < ($0.element.count, $1.offset) }.map(\.element)
        let parts = ordered.map { "\($0.problem.phrase) on \($0.count) node\($0.count == 1 ? "" : "s")" }
        return "none of \(problems.count) nodes fits: " + parts.joined(separator: "; ")
    }
}
