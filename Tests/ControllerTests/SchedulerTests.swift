@testable import Controller
import Manifest
import Testing

@Suite("Scheduler: resources, ports, scoring and reasons")
struct SchedulerTests {
    let key = ServiceKey("app", "s")

    @Test func memoryExhaustionOnEveryNodeIsReportedAsSuch() throws {
        var cluster = TestCluster(nodes: ["a", "b", "c"].map { makeNode($0, memoryBytes: 1 * gibibyte) })
        // 512Mi each: two per node fit, the seventh does not.
        cluster.apply(makeApplication("app", makeService("s", replicas: 7, cpu: 0.1, memoryMebibytes: 512)))
        let (plan, outcome) = cluster.schedule()
        #expect(outcome.placed.count == 6)
        #expect(plan.unplaced == [UnplacedInstances(service: key, count: 1, reason: "insufficient memory on all 3 nodes (needs 512Mi)")])
        #expect(Dictionary(grouping: plan.placements, by: \.node).mapValues(\.count) == ["a": 2, "b": 2, "c": 2])
        checkInvariants(cluster.state)
    }

    @Test func cpuIsReservedInMillicoresAndReserveOverridesTheLimit() throws {
        var cluster = TestCluster(nodes: [makeNode("a", cpuMillicores: 1000)])
        var service = makeService("s", replicas: 5, cpu: 0.5, memoryMebibytes: 16)
        service.resources.reserve = ResourceReservation(cpu: 0.25)
        cluster.apply(makeApplication("app", service))
        let (plan, _) = cluster.schedule()
        #expect(plan.placements.count == 4)
        #expect(plan.unplaced.first?.reason == "insufficient cpu on the only node (needs 0.25 cpu)")
        #expect(cluster.live(key).allSatisfy { $0.reservedCPUMillicores == 250 && $0.reservedMemoryBytes == 16 * mebibyte })
    }

    @Test func aStaticPortIsHeldOncePerNode() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        let http = Port(name: "http", number: 8080)
        cluster.apply(makeApplication("app", makeService("s", replicas: 3, ports: [http])))
        let (plan, _) = cluster.schedule()
        #expect(Set(plan.placements.map(\.node)) == ["a", "b"])
        #expect(plan.placements.allSatisfy { $0.ports == [AssignedPort(name: "http", number: 8080)] })
        #expect(plan.unplaced.first?.reason == "port 8080/tcp is in use on all 2 nodes")
        // The same number over udp does not conflict.
        cluster.apply(makeApplication("dns", makeService("d", replicas: 2, ports: [Port(name: "dns", number: 8080, protocol: .udp)])))
        let (second, _) = cluster.schedule(.application("dns"))
        #expect(second.placements.count == 2 && second.unplaced.isEmpty)
        checkInvariants(cluster.state)
    }

    @Test func dynamicPortsNeverCollideAndRunOutCleanly() throws {
        let range = PortRange(30_000, 30_099)
        var cluster = TestCluster(nodes: [makeNode("a", cpuMillicores: 100_000, ports: range), makeNode("b", cpuMillicores: 100_000, ports: range)])
        // Two dynamic ports per instance and 100 numbers per node: room for 50 instances per node.
        cluster.apply(makeApplication("app", makeService("s", replicas: 90, cpu: 0.01, memoryMebibytes: 4, ports: [Port(name: "a"), Port(name: "b")])))
        let (plan, _) = cluster.schedule()
        #expect(plan.placements.count == 90)
        for node in ["a", "b"] {
            let numbers = plan.placements.filter { $0.node == node }.flatMap(\.ports).map(\.number)
            #expect(Set(numbers).count == numbers.count, "a port was assigned twice on \(node)")
            #expect(numbers.allSatisfy(range.contains))
        }
        cluster.apply(.scaleService(key, replicas: 101, expectedRevision: nil))
        let (more, _) = cluster.schedule()
        // 200 numbers, 2 per instance: exactly 100 instances.
        #expect(more.placements.count == 10)
        #expect(more.unplaced == [UnplacedInstances(service: key, count: 1, reason: "no free dynamic port on all 2 nodes")])
        checkInvariants(cluster.state)
    }

    @Test func dynamicPortsAvoidNumbersOtherServicesHold() throws {
        let range = PortRange(40_000, 40_003)
        var cluster = TestCluster(nodes: [makeNode("a", ports: range)])
        cluster.apply(makeApplication("fixed", makeService("f", ports: [Port(name: "p", number: 40_001), Port(name: "q", number: 40_002, protocol: .udp)])))
        cluster.schedule(.application("fixed"))
        cluster.apply(makeApplication("app", makeService("s", replicas: 3, ports: [Port(name: "http")])))
        let (plan, _) = cluster.schedule(.application("app"))
        let dynamic = plan.placements.filter { $0.service == key }.flatMap(\.ports).map(\.number).sorted()
        #expect(dynamic == [40_000, 40_003])
        #expect(plan.unplaced.first?.reason == "no free dynamic port on the only node")
    }

    @Test func portAssignmentIsAPureFunctionOfItsInput() {
        let ports = [Port(name: "http"), Port(name: "admin", number: 9000), Port(name: "metrics")]
        let first = PortAllocator.assign(ports, key: "app.s/0/1", range: .defaultDynamic, usage: NodeUsage())
        let second = PortAllocator.assign(ports, key: "app.s/0/1", range: .defaultDynamic, usage: NodeUsage())
        #expect(first == second)
        #expect(first?.map(\.name) == ["http", "admin", "metrics"])
        #expect(first?[1].number == 9000)
        // Different slots start their search at different places.
        let other = PortAllocator.assign(ports, key: "app.s/1/1", range: .defaultDynamic, usage: NodeUsage())
        #expect(other?[0].number != first?[0].number)
    }

    @Test func instancesSpreadEvenlyOverAnAttribute() throws {
        // Zone c has one large node, zones a and b two small ones each: without spread,
        // least-allocated would favour the large node.
        let nodes = [
            makeNode("a1", labels: ["zone": "a"]), makeNode("a2", labels: ["zone": "a"]),
            makeNode("b1", labels: ["zone": "b"]), makeNode("b2", labels: ["zone": "b"]),
            makeNode("c1", cpuMillicores: 32_000, memoryBytes: 64 * gibibyte, labels: ["zone": "c"]),
            makeNode("x1", cpuMillicores: 32_000, memoryBytes: 64 * gibibyte),
        ]
        var cluster = TestCluster(nodes: nodes)
        cluster.apply(makeApplication("app", makeService("s", replicas: 9, placement: Placement(spread: [Spread(attribute: "label.zone")]))))
        cluster.schedule()
        var zones: [String: Int] = [:]
        for instance in cluster.live(key) { zones[cluster.state.nodes[instance.node]?.registration.labels["zone"] ?? "none", default: 0] += 1 }
        #expect(zones == ["a": 3, "b": 3, "c": 3])
        // Within a zone, instances also spread over nodes (anti-affinity).
        let perNode = Dictionary(grouping: cluster.live(key), by: \.node).mapValues(\.count)
        #expect(perNode["a1"] == 2 || perNode["a2"] == 2)
        #expect(abs((perNode["a1"] ?? 0) - (perNode["a2"] ?? 0)) == 1)
    }

    @Test func spreadAcrossSeveralAttributesKeepsEachEven() throws {
        var nodes: [NodeRegistration] = []
        for zone in ["a", "b"] {
            for rack in ["r1", "r2", "r3"] { nodes.append(makeNode("\(zone)-\(rack)", labels: ["zone": zone, "rack": rack])) }
        }
        var cluster = TestCluster(nodes: nodes)
        let spread = [Spread(attribute: "label.zone"), Spread(attribute: "label.rack", weight: 50)]
        cluster.apply(makeApplication("app", makeService("s", replicas: 6, placement: Placement(spread: spread))))
        cluster.schedule()
        let live = cluster.live(key).compactMap { cluster.state.nodes[$0.node]?.registration.labels }
        #expect(Dictionary(grouping: live, by: { $0["zone"] ?? "" }).mapValues(\.count) == ["a": 3, "b": 3])
        #expect(Dictionary(grouping: live, by: { $0["rack"] ?? "" }).mapValues(\.count) == ["r1": 2, "r2": 2, "r3": 2])
    }

    @Test func distinctNodesPutsAtMostOneInstancePerNode() throws {
        var cluster = TestCluster(nodes: ["a", "b", "c"].map { makeNode($0) })
        cluster.apply(makeApplication("app", makeService("s", replicas: 4, placement: Placement(distinctNodes: true))))
        let (plan, _) = cluster.schedule()
        #expect(plan.placements.map(\.node).sorted() == ["a", "b", "c"])
        #expect(plan.unplaced == [UnplacedInstances(service: key, count: 1, reason: "distinctNodes: all 3 nodes already run an instance of the service")])
    }

    @Test func leastAllocatedPrefersTheEmptierNode() throws {
        var cluster = TestCluster(nodes: [makeNode("big", cpuMillicores: 16_000, memoryBytes: 32 * gibibyte), makeNode("small", cpuMillicores: 2000, memoryBytes: 4 * gibibyte)])
        cluster.apply(makeApplication("other", makeService("o", replicas: 1, cpu: 1, memoryMebibytes: 1024)))
        cluster.schedule()
        #expect(cluster.live(ServiceKey("other", "o")).first?.node == "big")
        // One instance of this service per node first (anti-affinity), then by free share.
        cluster.apply(makeApplication("app", makeService("s", replicas: 3, cpu: 0.5, memoryMebibytes: 256)))
        cluster.schedule()
        #expect(Dictionary(grouping: cluster.live(key), by: \.node).mapValues(\.count) == ["big": 2, "small": 1])
    }

    @Test func nodesThatAreDownOrDrainingTakeNothing() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b"), makeNode("c")])
        cluster.apply(.markNodeDown(node: "a", lastHeartbeatSeen: nil))
        cluster.apply(.setNodeDraining(node: "b", draining: true))
        cluster.apply(makeApplication("app", makeService("s", replicas: 2)))
        let (plan, _) = cluster.schedule()
        #expect(plan.placements.map(\.node) == ["c", "c"])
        // Draining c too: its instances should move, but no node is ready, so they stay.
        cluster.apply(.setNodeDraining(node: "c", draining: true))
        let (stuck, outcome) = cluster.schedule()
        #expect(stuck.placements.isEmpty && outcome.stopped.isEmpty)
        #expect(stuck.unplaced == [UnplacedInstances(service: key, count: 1, reason: "no node is ready (1 down, 2 draining)")])
        #expect(cluster.live(key).count == 2)
    }

    @Test(arguments: [
        ([String](), "no nodes are registered"),
        (["down"], "no node is ready (1 down)"),
        (["down", "small", "windows"], "none of 3 nodes fits: node down on 1 node; insufficient memory (needs 2Gi) on 1 node; node.os = linux not satisfied on 1 node"),
        (["small", "small2", "windows"], "none of 3 nodes fits: insufficient memory (needs 2Gi) on 2 nodes; node.os = linux not satisfied on 1 node"),
    ])
    func unplaceableReasonsNameWhatEachNodeLacked(nodes: [String], reason: String) throws {
        let registrations: [String: NodeRegistration] = [
            "down": makeNode("down"), "small": makeNode("small", memoryBytes: gibibyte), "small2": makeNode("small2", memoryBytes: gibibyte),
            "windows": makeNode("windows", os: "windows"),
        ]
        var cluster = TestCluster(nodes: nodes.compactMap { registrations[$0] })
        if nodes.contains("down") { cluster.apply(.markNodeDown(node: "down", lastHeartbeatSeen: nil)) }
        let linux = PlacementConstraint(attribute: "node.os", operator: .equal, value: "linux")
        cluster.apply(makeApplication("app", makeService("s", memoryMebibytes: 2048, placement: Placement(constraints: [linux]))))
        let (plan, _) = cluster.schedule()
        #expect(plan.unplaced == [UnplacedInstances(service: key, count: 1, reason: reason)])
    }

    @Test func theSamePlanComesOutWhateverOrderNodesRegisteredIn() throws {
        var generator = SeededGenerator(seed: 7)
        let nodes = (0..<8).map { makeNode("n\($0)", cpuMillicores: [2000, 4000, 8000][$0 % 3], labels: ["zone": "z\($0 % 3)"]) }
        let application = makeApplication(
            "app", makeService("s", replicas: 12, ports: [Port(name: "http")], placement: Placement(spread: [Spread(attribute: "label.zone")])),
            makeService("t", replicas: 5, cpu: 1, memoryMebibytes: 512))
        var plans: [Plan] = []
        for _ in 0..<5 {
            var cluster = TestCluster(nodes: nodes.shuffled(using: &generator))
            cluster.apply(application)
            plans.append(cluster.scheduler.schedule(cluster.state, for: .all))
        }
        #expect(Set(plans).count == 1)
        #expect(plans[0].placements.count == 17)
    }
}
