import Manifest

/// What one instance takes from its node.
struct Reservation: Hashable {
    var service: ServiceKey
    var cpuMillicores: Int
    var memoryBytes: Int64
    var ports: [AssignedPort]
}

extension InstanceRecord {
    var reservation: Reservation {
        Reservation(service: service, cpuMillicores: reservedCPUMillicores, memoryBytes: reservedMemoryBytes, ports: ports)
    }
}

extension Resources {
    /// The cpu reservation in thousandths of a core; manifests allow at most 3 decimals, so
    /// this is exact and sums never drift.
    var reservedCPUMillicores: Int { Int((reservedCPU * 1000).rounded()) }
}

/// A port as the kernel sees it: two services may share a number over different protocols.
struct PortKey: Hashable {
    var number: Int
    var `protocol`: PortProtocol
}

/// The sum of what instances take from one node.
struct NodeUsage {
    var cpuMillicores = 0
    var memoryBytes: Int64 = 0
    /// Counts, not sets, so that removing one holder of a port (in a state that somehow has
    /// two) does not free it for the other.
    var ports: [PortKey: Int] = [:]
    var portNumbers: [Int: Int] = [:]
    var instancesByService: [ServiceKey: Int] = [:]

    mutating func add(_ reservation: Reservation) {
        cpuMillicores += reservation.cpuMillicores
        memoryBytes += reservation.memoryBytes
        for port in reservation.ports {
            ports[PortKey(number: port.number, protocol: port.protocol), default: 0] += 1
            portNumbers[port.number, default: 0] += 1
        }
        instancesByService[reservation.service, default: 0] += 1
    }

    mutating func remove(_ reservation: Reservation) {
        cpuMillicores -= reservation.cpuMillicores
        memoryBytes -= reservation.memoryBytes
        for port in reservation.ports {
            Self.decrement(&ports, PortKey(number: port.number, protocol: port.protocol))
            Self.decrement(&portNumbers, port.number)
        }
        Self.decrement(&instancesByService, reservation.service)
    }

    func isInUse(_ number: Int, _ protocol: PortProtocol) -> Bool {
        ports[PortKey(number: number, protocol: `protocol`)] != nil
    }

    /// Whether any protocol uses the number: dynamic ports avoid those, so that a service
    /// that later adds the other protocol on its port does not collide.
    func isNumberInUse(_ number: Int) -> Bool {
        portNumbers[number] != nil
    }

    private static func decrement<Key: Hashable>(_ counts: inout [Key: Int], _ key: Key) {
        guard let count = counts[key] else { return }
        counts[key] = count > 1 ? count - 1 : nil
    }
}

/// Every node's usage, from the instances that hold resources: those wanted running and not
/// known exited. An instance told to stop frees its share at once, as in Nomad (an allocation
/// whose desired status is stop is terminal for AllocsFit); the worker stops what a placement
/// replaces before starting it.
struct ClusterUsage {
    var byNode: [String: NodeUsage] = [:]

    init(_ state: ClusterState) {
        for instance in state.instances.values where instance.isLive {
            byNode[instance.node, default: NodeUsage()].add(instance.reservation)
        }
    }

    subscript(node: String) -> NodeUsage {
        byNode[node] ?? NodeUsage()
    }

    mutating func add(_ reservation: Reservation, on node: String) {
        byNode[node, default: NodeUsage()].add(reservation)
    }

    mutating func remove(_ reservation: Reservation, on node: String) {
        byNode[node, default: NodeUsage()].remove(reservation)
    }
}
