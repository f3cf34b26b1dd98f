@testable import Controller
import Manifest
import Testing

/// A service with small, explicit resources, so that capacity arithmetic in tests is obvious.
func makeService(
    _ name: String, replicas: Int = 1, cpu: Double = 0.25, memoryMebibytes: Int64 = 64, ports: [Port] = [],
    restart: RestartPolicyKind = .always, update: UpdateStrategy = UpdateStrategy(), placement: Placement = Placement(),
    command: [String] = ["/bin/true"]
) -> Service {
    var service = Service(name: name, command: command)
    service.replicas = replicas
    service.resources = Resources(cpu: cpu, memory: .mebibytes(memoryMebibytes), pids: 64)
    service.network = Network(ports: ports)
    service.restart = RestartPolicy(policy: restart)
    service.update = update
    service.placement = placement
    return service
}

func makeApplication(_ name: String, _ services: Service...) -> Application {
    Application(name: name, services: services)
}

/// The manifest text a client would send.
func text(_ application: Application) -> String {
    application.encodedJSON()
}

let gibibyte: Int64 = 1 << 30
let mebibyte: Int64 = 1 << 20

func makeNode(
    _ name: String, cpuMillicores: Int = 4000, memoryBytes: Int64 = 8 * gibibyte, labels: [String: String] = [:], os: String = "linux",
    arch: String = "x86_64", kernel: String = "6.1.0-13-amd64", ports: PortRange = .defaultDynamic
) -> NodeRegistration {
    NodeRegistration(
        name: name, address: "\(name):7070", labels: labels,
        attributes: NodeAttributes(os: os, arch: arch, kernel: kernel, cpus: cpuMillicores / 1000, memoryBytes: memoryBytes),
        capacity: NodeCapacity(cpuMillicores: cpuMillicores, memoryBytes: memoryBytes), dynamicPorts: ports)
}

/// A cluster driven the way the leader drives it: every command goes through its log
/// encoding, gets the next index, and a proposer's time one second after the previous one.
struct TestCluster {
    var state = ClusterState()
    var index: UInt64 = 0
    var now = Timestamp(unixMilliseconds: 1_700_000_000_000)
    let scheduler = Scheduler()

    init(nodes: [NodeRegistration] = []) {
        for node in nodes { apply(.registerNode(node)) }
    }

    @discardableResult
    mutating func apply(_ command: ControllerCommand) -> CommandResult {
        index += 1
        now = now.adding(.seconds(1))
        let bytes = ControllerEntry(command: command, time: now).encoded()
        return state.apply(entry: bytes, at: index)
    }

    @discardableResult
    mutating func apply(_ application: Application, expectedRevision: UInt64? = nil) -> CommandResult {
        apply(.applyApplication(manifestJSON: text(application), expectedRevision: expectedRevision))
    }

    /// Schedules an evaluation and commits the plan; returns both.
    @discardableResult
    mutating func schedule(_ evaluation: Evaluation = .all, at time: Timestamp? = nil) -> (plan: Plan, outcome: PlanOutcome) {
        let plan = scheduler.schedule(state, for: evaluation, at: time)
        guard case .planCommitted(let outcome) = apply(.commitPlan(plan)) else {
            Issue.record("a plan commit was not applied as a plan")
            return (plan, PlanOutcome())
        }
        return (plan, outcome)
    }

    /// Every node reports each of its instances: wanted ones as `status`, those told to stop as stopped.
    mutating func reportAll(_ status: InstanceStatus = .healthy, only ids: Set<InstanceID>? = nil) {
        for node in state.nodes.keys.sorted() where !(state.nodes[node]?.isDown ?? true) {
            let reports = state.instances(on: node).compactMap { instance -> InstanceStatusReport? in
                if let ids, !ids.contains(instance.id) { return nil }
                if instance.desiredState == .stop { return InstanceStatusReport(id: instance.id, status: .stopped) }
                if instance.status.isTerminal { return nil }
                return InstanceStatusReport(id: instance.id, status: status)
            }
            if !reports.isEmpty { apply(.reportInstanceStatus(node: node, reports: reports)) }
        }
    }

    /// Schedules, then reports every instance healthy (and every stopped one stopped), until
    /// a round changes nothing; returns the number of rounds, the last one included.
    @discardableResult
    mutating func converge(maxRounds: Int = 50) -> Int {
        for round in 1...maxRounds {
            let before = state.lastChangeIndex
            schedule()
            reportAll()
            if state.lastChangeIndex == before { return round }
        }
        Issue.record("did not converge in \(maxRounds) rounds")
        return maxRounds
    }

    func live(_ key: ServiceKey) -> [InstanceRecord] {
        state.instances(of: key).filter(\.isLive)
    }
}

/// SplitMix64: a tiny generator whose whole state is its seed, so a failing seed replays exactly.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Checks what must hold in every state: no node gives more than it has, no port is held
/// twice on a node. (Two current instances in one slot may exist for a while: cancelling a
/// drain makes the instance that was being moved current again beside its replacement, and
/// the next plan stops one of them; ConvergenceTests checks that it does.)
func checkInvariants(_ state: ClusterState, _ context: @autoclosure () -> String = "", sourceLocation: SourceLocation = #_sourceLocation) {
    var cpu: [String: Int] = [:]
    var memory: [String: Int64] = [:]
    var ports: [String: Set<String>] = [:]
    for instance in state.instances.values.sorted(by: { $0.id < $1.id }) where instance.isLive {
        cpu[instance.node, default: 0] += instance.reservedCPUMillicores
        memory[instance.node, default: 0] += instance.reservedMemoryBytes
        for port in instance.ports {
            let inserted = ports[instance.node, default: []].insert("\(port.number)/\(port.protocol.rawValue)").inserted
            #expect(inserted, "port \(port.number) held twice on \(instance.node) \(context())", sourceLocation: sourceLocation)
        }
    }
    // The by-node index answers exactly what a walk over every instance would.
    for name in Set(state.instances.values.map(\.node)).union(state.nodes.keys) {
        let walked = state.instances.values.filter { $0.node == name }.map(\.id).sorted()
        #expect(state.instances(on: name).map(\.id) == walked, "instances(on: \(name)) \(context())", sourceLocation: sourceLocation)
    }
    for (name, node) in state.nodes {
        #expect(cpu[name, default: 0] <= node.registration.capacity.cpuMillicores, "cpu overcommitted on \(name) \(context())", sourceLocation: sourceLocation)
        #expect(memory[name, default: 0] <= node.registration.capacity.memoryBytes, "memory overcommitted on \(name) \(context())", sourceLocation: sourceLocation)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Seeds for randomized tests: `count` by default, more with `CONTROLLER_SEEDS=N` in the
/// environment for a longer soak (`CONTROLLER_SEEDS=2000 swift test --filter ControllerTests`).
func seeds(_ count: UInt64) -> [UInt64] {
    guard let text = getenv("CONTROLLER_SEEDS"), let wanted = UInt64(String(cString: text)) else { return Array(0..<count) }
    return Array(0..<wanted)
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
