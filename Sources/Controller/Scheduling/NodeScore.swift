import Manifest

/// How good a feasible node is for one instance; the smallest score wins.
///
/// Compared in order: spread over the service's `placement.spread` attributes, then how many
/// instances of the same service the node already runs (Nomad's job anti-affinity), then how
/// much of the node would stay free (least-allocated), then the node's name, so that equal
/// inputs always give the same plan.
///
/// Least-allocated rather than bin-packing, which is Nomad's default (`scheduler_algorithm =
/// "binpack"`, with "spread" as the alternative it offers for availability) and the opposite
/// of Kubernetes' default (NodeResourcesFit's LeastAllocated strategy). Flotilla runs on a
/// handful of fixed hosts: packing frees whole machines only where machines are added and
/// removed on demand, which is not our case, whereas spreading means that losing a host loses
/// the fewest instances, and it leaves room on every node for a rollout's surge.
struct NodeScore: Comparable {
    /// Σ weight × instances already on this node's attribute value; lower is more even.
    var spreadPenalty: Int
    var sameServiceInstances: Int
    /// The mean share of cpu and memory left free after the placement, 0...1.
    var freeShare: Double
    var node: String

    static func < (lhs: NodeScore, rhs: NodeScore) -> Bool {
        if lhs.spreadPenalty != rhs.spreadPenalty { return lhs.spreadPenalty < rhs.spreadPenalty }
        if lhs.sameServiceInstances != rhs.sameServiceInstances { return lhs.sameServiceInstances < rhs.sameServiceInstances }
        if lhs.freeShare != rhs.freeShare { return lhs.freeShare > rhs.freeShare }
        return lhs.node < rhs.node
    }
}

/// How many instances of one service each value of each spread attribute holds.
struct SpreadCounts {
    /// One table per entry of `placement.spread`, in the same order.
    private var tables: [[String: Int]]
    private let spreads: [Spread]

    init(_ service: Service, key: ServiceKey, nodes: [NodeRecord], usage: ClusterUsage) {
        spreads = service.placement.spread
        tables = spreads.map { spread in
            var counts: [String: Int] = [:]
            for node in nodes {
                guard let value = node.registration.attribute(spread.attribute) else { continue }
                counts[value, default: 0] += usage[node.name].instancesByService[key, default: 0]
            }
            return counts
        }
    }

    /// A node without the attribute scores worse than any value that has it, so that an
    /// unlabelled node does not become the favourite bucket of a zone spread.
    func penalty(for node: NodeRecord) -> Int {
        var penalty = 0
        for (spread, counts) in zip(spreads, tables) {
            if let value = node.registration.attribute(spread.attribute) {
                penalty += spread.weight * counts[value, default: 0]
            } else {
                penalty += spread.weight * ((counts.values.max() ?? 0) + 1)
            }
        }
        return penalty
    }
}

extension NodeScore {
    init(node: NodeRecord, reservation: Reservation, usage: NodeUsage, spread: SpreadCounts) {
        let capacity = node.registration.capacity
        let freeCPU = Double(capacity.cpuMillicores - usage.cpuMillicores - reservation.cpuMillicores) / Double(capacity.cpuMillicores)
        let freeMemory = Double(capacity.memoryBytes - usage.memoryBytes - reservation.memoryBytes) / Double(capacity.memoryBytes)
        self.init(
            spreadPenalty: spread.penalty(for: node), sameServiceInstances: usage.instancesByService[reservation.service, default: 0],
            freeShare: (freeCPU + freeMemory) / 2, node: node.name)
    }
}
