@testable import Controller
import Manifest

/// Draws plausible commands, every kind of them, from the state they will be applied to:
/// manifests (valid, invalid, with stale check-and-set), scales, restarts, node churn, plans
/// fresh and stale, and status reports right and wrong. One seed, one sequence.
struct RandomWorkload {
    var random: SeededGenerator
    let scheduler = Scheduler()
    /// Plans computed earlier, committed later, as a deposed leader's would be.
    var stalePlans: [Plan] = []
    static let applicationNames = ["web", "api", "report"]
    static let nodeNames = ["n0", "n1", "n2", "n3", "n4"]

    init(seed: UInt64) {
        random = SeededGenerator(seed: seed)
    }

    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &random) < percent }
    mutating func pick<T>(_ values: [T]) -> T { values[Int.random(in: 0..<values.count, using: &random)] }

    mutating func command(for state: ClusterState) -> ControllerCommand {
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<12: return applyManifest(state)
        case 12..<14: return .applyApplication(manifestJSON: "{\"name\": \"web\", \"services\": [{\"name\": \"x\", \"replicas\": -1}]}", expectedRevision: nil)
        case 14..<17: return .deleteApplication(name: pick(Self.applicationNames), expectedRevision: chance(50) ? nil : UInt64.random(in: 0...3, using: &random))
        case 17..<23: return .scaleService(randomService(state), replicas: Int.random(in: 0...6, using: &random), expectedRevision: nil)
        case 23..<26: return .restartService(randomService(state))
        case 26..<31: return .registerNode(node(pick(Self.nodeNames)))
        case 31..<40: return .nodeHeartbeat(node: pick(Self.nodeNames))
        case 40..<44:
            let name = pick(Self.nodeNames)
            let seen = chance(70) ? state.nodes[name]?.lastHeartbeat : Timestamp(unixMilliseconds: 5)
            return .markNodeDown(node: name, lastHeartbeatSeen: seen)
        case 44..<47: return .setNodeDraining(node: pick(Self.nodeNames), draining: chance(40))
        case 47..<70:
            let evaluation: Evaluation = pick([.all, .application(pick(Self.applicationNames)), .service(randomService(state)), .node(pick(Self.nodeNames))])
            // Now and then at a leader's clock an hour on, which ends every rollout deadline.
            let now = chance(10) ? Timestamp(unixMilliseconds: 1_700_003_600_000) : nil
            let plan = scheduler.schedule(state, for: evaluation, at: now)
            if chance(20) { stalePlans.append(plan) }
            return .commitPlan(plan)
        case 70..<74 where !stalePlans.isEmpty:
            return .commitPlan(stalePlans.removeFirst())
        case 74..<78:
            let action = pick([RolloutAction.pause, .resume, .undo(to: nil), .undo(to: UInt64.random(in: 1...4, using: &random))])
            return .controlRollout(application: pick(Self.applicationNames), action: action)
        case 95..<100:
            return kvTransaction(state)
        default:
            return statusReport(state)
        }
    }

    mutating func applyManifest(_ state: ClusterState) -> ControllerCommand {
        let name = pick(Self.applicationNames)
        var services: [Service] = []
        for serviceName in ["a", "b", "c"].prefix(Int.random(in: 1...3, using: &random)) {
            var ports: [Port] = []
            if chance(40) { ports.append(Port(name: "http")) }
            if chance(20) { ports.append(Port(name: "admin", number: pick([8080, 8081]))) }
            var placement = Placement()
            if chance(25) { placement.constraints.append(PlacementConstraint(attribute: "label.zone", operator: .in, values: [pick(["z0", "z1"]), "z2"])) }
            if chance(25) { placement.spread.append(Spread(attribute: "label.zone", weight: pick([50, 100]))) }
            placement.distinctNodes = chance(15)
            services.append(
                makeService(
                    serviceName, replicas: Int.random(in: 0...5, using: &random), cpu: pick([0.1, 0.5, 1]), memoryMebibytes: pick([32, 256, 1024]),
                    ports: ports, restart: name == "report" ? .never : .always,
                    update: UpdateStrategy(maxParallel: Int.random(in: 1...3, using: &random), maxSurge: Int.random(in: 0...2, using: &random)),
                    placement: placement, command: ["/bin/\(pick(["v1", "v2", "v3"]))"]))
        }
        let current = state.applications[name]?.currentRevision ?? 0
        let expected: UInt64? = chance(60) ? nil : (chance(70) ? current : current + 1)
        return .applyApplication(manifestJSON: text(Application(name: name, services: services)), expectedRevision: expected)
    }

    mutating func randomService(_ state: ClusterState) -> ServiceKey {
        let keys = state.applications.values.flatMap { record in record.services.keys.map { ServiceKey(record.name, $0) } }.sorted()
        return keys.isEmpty || chance(5) ? ServiceKey("web", "zz") : pick(keys)
    }

    /// Each node has a fixed capacity, so that re-registering never shrinks it under its instances.
    mutating func node(_ name: String) -> NodeRegistration {
        let number = Int(name.dropFirst()) ?? 0
        return makeNode(
            name, cpuMillicores: 2000 + 1000 * number, memoryBytes: Int64(2 + number) * gibibyte, labels: ["zone": "z\(number % 3)", "build": pick(["1", "2"])],
            ports: PortRange(30_000, 30_000 + 20 * (number + 1)))
    }

    static let kvKeys = ["cfg/a", "cfg/b", "cfg/c/d", "flags/x"]

    /// A key-value transaction over a few keys: comparisons that hold or not (current modify
    /// indexes, 0, stale ones, values), then sets, gets and deletes of keys and folders.
    mutating func kvTransaction(_ state: ClusterState) -> ControllerCommand {
        func key(_ text: String) -> KVKey { (try? KVKey(validating: text)) ?? KVKey(trusted: Array(text.utf8)) }
        var compares: [KVCompare] = []
        for _ in 0..<Int.random(in: 0...2, using: &random) {
            let name = key(pick(Self.kvKeys))
            let current = state.kv.get(name)
            compares.append(chance(50)
                ? .modifyIndex(name, equals: chance(70) ? current?.modifyIndex ?? 0 : UInt64.random(in: 0...3, using: &random))
                : .value(name, equals: chance(70) ? current?.value ?? [1] : [UInt8(Int.random(in: 0...2, using: &random))]))
        }
        var operations: [KVOperation] = []
        for _ in 0..<Int.random(in: 1...3, using: &random) {
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<5: operations.append(.set(key(pick(Self.kvKeys)), [UInt8(Int.random(in: 0...2, using: &random))]))
            case 5..<7: operations.append(.get(key(pick(Self.kvKeys))))
            case 7..<9: operations.append(.delete(key(pick(Self.kvKeys))))
            default: operations.append(.deleteTree(prefix: key(pick(["cfg/", "cfg/c/", "flags"]))))
            }
        }
        return .kvTransaction(KVTransaction(compares: compares, operations: operations))
    }

    mutating func statusReport(_ state: ClusterState) -> ControllerCommand {
        let name = pick(Self.nodeNames)
        var reports: [InstanceStatusReport] = []
        for instance in state.instances(on: name) where chance(60) {
            let status: InstanceStatus =
                instance.desiredState == .stop && chance(70) ? .stopped : pick([.starting, .running, .healthy, .healthy, .unhealthy, .completed, .failed])
            reports.append(InstanceStatusReport(id: instance.id, status: status, exit: status.isTerminal ? ExitInfo(code: Int32(Int.random(in: 0...2, using: &random))) : nil))
        }
        if chance(10) { reports.append(InstanceStatusReport(id: "web.a.0-999999", status: .running)) }
        return .reportInstanceStatus(node: name, reports: reports)
    }
}
