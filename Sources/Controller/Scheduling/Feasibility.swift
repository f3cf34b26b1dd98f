import Manifest

/// Why one node cannot take one instance: the first check it failed.
enum Infeasibility: Hashable {
    case notReady(NodeStatus)
    case constraint(PlacementConstraint)
    /// `distinctNodes`, and the node already runs an instance of the service.
    case alreadyRunsService
    case insufficientCPU(neededMillicores: Int)
    case insufficientMemory(neededBytes: Int64)
    case portInUse(number: Int, protocol: PortProtocol)
    case noFreeDynamicPort(PortRange)

    /// The reason for a group of nodes, phrased to follow "on N nodes".
    var phrase: String {
        switch self {
        case .notReady(let status): "node \(status.rawValue)"
        case .constraint(let constraint): "\(constraint.summary) not satisfied"
        case .alreadyRunsService: "already running an instance (distinctNodes)"
        case .insufficientCPU(let needed): "insufficient cpu (needs \(Self.cores(needed)))"
        case .insufficientMemory(let needed): "insufficient memory (needs \(ByteSize(bytes: needed)))"
        case .portInUse(let number, let transport): "port \(number)/\(transport.rawValue) in use"
        case .noFreeDynamicPort(let range): "no free port in \(range)"
        }
    }

    /// The whole reason when every node failed the same way.
    func everywhere(nodeCount: Int) -> String {
        let all = nodeCount == 1 ? "the only node" : "all \(nodeCount) nodes"
        switch self {
        case .notReady(let status): return "no node is ready (\(nodeCount) \(status.rawValue))"
        case .constraint(let constraint): return "no node satisfies \(constraint.summary)"
        case .alreadyRunsService: return "distinctNodes: \(all) already run an instance of the service"
        case .insufficientCPU(let needed): return "insufficient cpu on \(all) (needs \(Self.cores(needed)))"
        case .insufficientMemory(let needed): return "insufficient memory on \(all) (needs \(ByteSize(bytes: needed)))"
        case .portInUse(let number, let transport): return "port \(number)/\(transport.rawValue) is in use on \(all)"
        case .noFreeDynamicPort: return "no free dynamic port on \(all)"
        }
    }

    private static func cores(_ millicores: Int) -> String {
        millicores % 1000 == 0 ? "\(millicores / 1000) cpu" : "\(Double(millicores) / 1000) cpu"
    }
}

/// The checks a node must pass to take an instance (Nomad's feasibility iterators, in order
/// of cost): status, constraints, distinctNodes, resources, static ports. Dynamic ports are
/// assigned afterwards by ``PortAllocator``.
enum Feasibility {
    static func check(
        _ service: Service, needs reservation: Reservation, on node: NodeRecord, usage: NodeUsage, matcher: inout ConstraintMatcher
    ) -> Infeasibility? {
        guard node.status == .ready else { return .notReady(node.status) }
        for constraint in service.placement.constraints where !matcher.isSatisfied(constraint, by: node.registration) {
            return .constraint(constraint)
        }
        return fit(service, needs: reservation, on: node, usage: usage)
    }

    /// What the plan applier re-checks at commit time: everything but constraints, which
    /// depend only on node attributes and were checked by the scheduler (as Nomad's plan
    /// applier re-checks only AllocsFit).
    static func fit(_ service: Service, needs reservation: Reservation, on node: NodeRecord, usage: NodeUsage) -> Infeasibility? {
        if service.placement.distinctNodes, usage.instancesByService[reservation.service, default: 0] > 0 {
            return .alreadyRunsService
        }
        let capacity = node.registration.capacity
        if usage.cpuMillicores + reservation.cpuMillicores > capacity.cpuMillicores {
            return .insufficientCPU(neededMillicores: reservation.cpuMillicores)
        }
        if usage.memoryBytes + reservation.memoryBytes > capacity.memoryBytes {
            return .insufficientMemory(neededBytes: reservation.memoryBytes)
        }
        // While scheduling, the reservation holds only the static ports (dynamic ones are chosen
        // among the free ones); at commit, every port the placement assigned.
        for port in reservation.ports where usage.isInUse(port.number, port.protocol) {
            return .portInUse(number: port.number, protocol: port.protocol)
        }
        return nil
    }
}
