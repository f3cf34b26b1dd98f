@testable import Controller
import Manifest
import Testing

/// One node with known attributes, and whether each constraint admits it.
@Suite("Placement constraints, every operator on every attribute")
struct ConstraintTests {
    static let node = makeNode(
        "web-1", cpuMillicores: 4000, memoryBytes: 8 * gibibyte, labels: ["zone": "eu-1", "disk": "ssd"], os: "linux", arch: "x86_64",
        kernel: "6.1.0-13-amd64")

    static let cases: [(PlacementConstraint, Bool)] = [
        (PlacementConstraint(attribute: "node.name", operator: .equal, value: "web-1"), true),
        (PlacementConstraint(attribute: "node.name", operator: .equal, value: "web-2"), false),
        (PlacementConstraint(attribute: "node.os", operator: .notEqual, value: "windows"), true),
        (PlacementConstraint(attribute: "node.os", operator: .notEqual, value: "linux"), false),
        (PlacementConstraint(attribute: "node.arch", operator: .in, values: ["x86_64", "aarch64"]), true),
        (PlacementConstraint(attribute: "node.arch", operator: .in, values: ["aarch64"]), false),
        (PlacementConstraint(attribute: "node.arch", operator: .notIn, values: ["aarch64", "riscv64"]), true),
        (PlacementConstraint(attribute: "node.arch", operator: .notIn, values: ["x86_64"]), false),
        (PlacementConstraint(attribute: "node.name", operator: .regex, value: "web-[0-9]+"), true),
        // The whole value must match, not a part of it.
        (PlacementConstraint(attribute: "node.name", operator: .regex, value: "web"), false),
        (PlacementConstraint(attribute: "node.name", operator: .regex, value: "eb-1"), false),
        (PlacementConstraint(attribute: "node.kernel", operator: .version, value: ">= 5.10"), true),
        (PlacementConstraint(attribute: "node.kernel", operator: .version, value: ">= 6.1, < 6.2"), true),
        (PlacementConstraint(attribute: "node.kernel", operator: .version, value: "~> 5.15"), false),
        (PlacementConstraint(attribute: "node.kernel", operator: .version, value: "< 6"), false),
        (PlacementConstraint(attribute: "node.cpus", operator: .version, value: ">= 4"), true),
        (PlacementConstraint(attribute: "node.cpus", operator: .version, value: ">= 8"), false),
        (PlacementConstraint(attribute: "node.cpus", operator: .equal, value: "4"), true),
        (PlacementConstraint(attribute: "node.memory", operator: .version, value: ">= 8192"), true),
        (PlacementConstraint(attribute: "node.memory", operator: .version, value: "> 8192"), false),
        (PlacementConstraint(attribute: "label.zone", operator: .equal, value: "eu-1"), true),
        (PlacementConstraint(attribute: "label.zone", operator: .in, values: ["us-1", "us-2"]), false),
        (PlacementConstraint(attribute: "label.disk", operator: .regex, value: "ssd|nvme"), true),
        // A label the node does not carry satisfies only the negative operators.
        (PlacementConstraint(attribute: "label.role", operator: .notEqual, value: "database"), true),
        (PlacementConstraint(attribute: "label.role", operator: .notIn, values: ["database"]), true),
        (PlacementConstraint(attribute: "label.role", operator: .equal, value: "database"), false),
        (PlacementConstraint(attribute: "label.role", operator: .in, values: ["database"]), false),
        (PlacementConstraint(attribute: "label.role", operator: .regex, value: ".*"), false),
        (PlacementConstraint(attribute: "label.role", operator: .version, value: ">= 0"), false),
    ]

    @Test(arguments: cases)
    func theSchedulerPlacesOnlyWhereTheConstraintHolds(constraint: PlacementConstraint, admits: Bool) throws {
        var cluster = TestCluster(nodes: [Self.node])
        // Through a manifest, so the constraint is also one the manifest validator accepts.
        let result = cluster.apply(makeApplication("app", makeService("s", placement: Placement(constraints: [constraint]))))
        #expect(result.error == nil, "\(result)")
        let (plan, outcome) = cluster.schedule()
        if admits {
            #expect(outcome.placed.count == 1 && plan.placements.first?.node == "web-1")
        } else {
            #expect(plan.placements.isEmpty)
            #expect(plan.unplaced == [UnplacedInstances(service: ServiceKey("app", "s"), count: 1, reason: "no node satisfies \(constraint.summary)")])
            #expect(cluster.state.applications["app"]?.services["s"]?.unplaced == plan.unplaced)
        }
    }

    @Test func aConstraintsSummaryReadsAsWritten() {
        #expect(PlacementConstraint(attribute: "node.os", operator: .equal, value: "windows").summary == "node.os = windows")
        #expect(PlacementConstraint(attribute: "label.zone", operator: .notIn, values: ["a", "b"]).summary == "label.zone not in [a, b]")
        #expect(PlacementConstraint(attribute: "node.kernel", operator: .version, value: ">= 5.10").summary == "node.kernel version >= 5.10")
    }

    @Test func attributesAreReadFromTheRegistration() {
        let node = Self.node
        #expect(node.attribute("node.name") == "web-1")
        #expect(node.attribute("node.memory") == "8192")
        #expect(node.attribute("node.cpus") == "4")
        #expect(node.attribute("label.zone") == "eu-1")
        #expect(node.attribute("label.nope") == nil)
        #expect(node.attribute("node.colour") == nil)
    }
}
