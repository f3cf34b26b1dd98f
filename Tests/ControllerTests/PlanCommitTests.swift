@testable import Controller
import Manifest
import Testing

/// Plans are computed from a snapshot and committed later; these check what the state
/// machine does with a plan the world has moved past.
@Suite("Committing plans against a state that moved")
struct PlanCommitTests {
    let key = ServiceKey("app", "s")

    @Test func aPlanForAnOldRevisionIsRefused() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        var application = makeApplication("app", makeService("s", replicas: 2))
        cluster.apply(application)
        let stale = cluster.scheduler.schedule(cluster.state, for: .all)
        application.services[0].command = ["/bin/v2"]
        cluster.apply(application)
        let before = cluster.state
        guard case .planCommitted(let outcome) = cluster.apply(.commitPlan(stale)) else { throw TestFailure("not a plan") }
        #expect(outcome.placed.isEmpty && outcome.rejected.count == 2)
        #expect(outcome.rejected.allSatisfy { $0.reason == "revision 1 is no longer current (now 2)" })
        #expect(cluster.state.instances == before.instances)
    }

    @Test func committingTheSamePlanTwiceMakesNoDuplicates() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        cluster.apply(makeApplication("app", makeService("s", replicas: 3)))
        let plan = cluster.scheduler.schedule(cluster.state, for: .all)
        cluster.apply(.commitPlan(plan))
        guard case .planCommitted(let second) = cluster.apply(.commitPlan(plan)) else { throw TestFailure("not a plan") }
        #expect(second.placed.isEmpty)
        #expect(second.rejected.map(\.reason) == (0..<3).map { index in "slot \(index) already has app.s.\(index)-\(index + 1)" })
        #expect(cluster.state.instances.count == 3)
        checkInvariants(cluster.state)
    }

    @Test func placementsThatNoLongerFitAreRefusedAndTheRestApplied() throws {
        var cluster = TestCluster(nodes: [makeNode("a", memoryBytes: gibibyte)])
        cluster.apply(makeApplication("app", makeService("s", replicas: 3, memoryMebibytes: 256)))
        let plan = cluster.scheduler.schedule(cluster.state, for: .all)
        #expect(plan.placements.count == 3)
        // Meanwhile another plan takes half the node.
        cluster.apply(makeApplication("big", makeService("b", memoryMebibytes: 512)))
        cluster.schedule(.application("big"))
        guard case .planCommitted(let outcome) = cluster.apply(.commitPlan(plan)) else { throw TestFailure("not a plan") }
        #expect(outcome.placed.count == 2)
        #expect(outcome.rejected.map(\.reason) == ["node a: insufficient memory (needs 256Mi)"])
        checkInvariants(cluster.state)
        // The next evaluation reports the slot it cannot fill.
        let (next, _) = cluster.schedule(.application("app"))
        #expect(next.unplaced.first?.reason == "insufficient memory on the only node (needs 256Mi)")
    }

    @Test func aPlacementOnANodeThatWentDownIsRefusedAndWhatItReplacesKeepsRunning() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        var application = makeApplication("app", makeService("s", replicas: 1, placement: Placement(constraints: [
            PlacementConstraint(attribute: "node.name", operator: .equal, value: "b"),
        ])))
        cluster.apply(application)
        cluster.converge()
        let old = try #require(cluster.live(key).first)
        application.services[0].command = ["/bin/v2"]
        cluster.apply(application)
        let plan = cluster.scheduler.schedule(cluster.state, for: .all)
        #expect(plan.placements.first?.replaces == [old.id])
        cluster.apply(.setNodeDraining(node: "b", draining: true))
        guard case .planCommitted(let outcome) = cluster.apply(.commitPlan(plan)) else { throw TestFailure("not a plan") }
        #expect(outcome.rejected.map(\.reason) == ["node b is draining"])
        #expect(outcome.stopped.isEmpty)
        #expect(cluster.state.instances[old.id]?.desiredState == .run)
    }

    @Test func aPlanThatDoesNotMatchTheManifestIsRefused() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(makeApplication("app", makeService("s", replicas: 2, ports: [Port(name: "http", number: 8080), Port(name: "admin")])))
        let good = [AssignedPort(name: "http", number: 8080), AssignedPort(name: "admin", number: 20_001)]
        func placement(_ index: Int, _ ports: [AssignedPort], node: String = "a", revision: UInt64 = 1) -> InstancePlacement {
            InstancePlacement(service: key, index: index, revision: revision, node: node, ports: ports, reason: "test")
        }
        let plan = Plan(
            evaluated: [key],
            placements: [
                placement(0, [AssignedPort(name: "http", number: 8081), good[1]]),
                placement(0, [good[0]]),
                placement(0, [good[0], AssignedPort(name: "admin", number: 8080)]),
                placement(0, good, node: "zz"),
                placement(2, good),
                placement(0, good),
                placement(1, [AssignedPort(name: "http", number: 8080), AssignedPort(name: "admin", number: 20_002)]),
            ])
        guard case .planCommitted(let outcome) = cluster.apply(.commitPlan(plan)) else { throw TestFailure("not a plan") }
        #expect(outcome.rejected.map(\.reason) == [
            "port http must be 8080, not 8081",
            "it assigns 1 ports; the service declares 2",
            "port admin has an invalid or repeated number 8080",
            "node zz is not registered",
            "slot 2 is beyond the 2 replicas wanted",
            "node a: port 8080/tcp in use",
        ])
        #expect(outcome.placed == ["app.s.0-1"])
    }

    @Test func unplacedReasonsAreRecordedForTheServicesAPlanCovered() throws {
        var cluster = TestCluster(nodes: [makeNode("a", memoryBytes: gibibyte)])
        cluster.apply(makeApplication("app", makeService("s", replicas: 2, memoryMebibytes: 768)))
        cluster.schedule()
        #expect(cluster.state.applications["app"]?.services["s"]?.unplaced == [
            UnplacedInstances(service: key, count: 1, reason: "insufficient memory on the only node (needs 768Mi)"),
        ])
        cluster.apply(.registerNode(makeNode("b")))
        cluster.schedule(.node("b"))
        #expect(cluster.state.applications["app"]?.services["s"]?.unplaced == [])
        #expect(cluster.live(key).count == 2)
    }
}
