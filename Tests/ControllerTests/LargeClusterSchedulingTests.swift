@testable import Controller
import Manifest
import Testing

/// On clusters of more than `SchedulingPass.examinesEveryNodeUpTo` nodes a placement compares
/// a few feasible nodes from a moving cursor (Nomad's limit iterator), and plans are capped.
@Suite("Scheduler on large clusters: candidate sampling and plan limits")
struct LargeClusterSchedulingTests {
    static let nodeNames = (0..<200).map { "n\(1000 + $0)" }

    @Test func theCandidateLimitIsEveryNodeOnSmallClustersAndLog2OnLargeOnes() {
        #expect(SchedulingPass.candidateLimit(nodeCount: 3) == 3)
        #expect(SchedulingPass.candidateLimit(nodeCount: 64) == 64)
        #expect(SchedulingPass.candidateLimit(nodeCount: 65) == 7)
        #expect(SchedulingPass.candidateLimit(nodeCount: 200) == 8)
        #expect(SchedulingPass.candidateLimit(nodeCount: 1_000) == 10)
    }

    @Test func consecutivePlacementsSpreadOverEveryNode() throws {
        var cluster = TestCluster(nodes: Self.nodeNames.map { makeNode($0) })
        cluster.apply(makeApplication("app", makeService("s", replicas: 400, cpu: 0.01, memoryMebibytes: 4)))
        let (plan, outcome) = cluster.schedule()
        #expect(outcome.placed.count == 400 && plan.unplaced.isEmpty)
        // The cursor moves on with every placement: each node gets its even share, as the
        // full scan's anti-affinity gave.
        let perNode = Dictionary(grouping: plan.placements, by: \.node).mapValues(\.count)
        #expect(perNode.count == 200 && perNode.values.allSatisfy { $0 == 2 }, "\(perNode.values.sorted())")
        checkInvariants(cluster.state)
    }

    @Test func aServiceThatFitsFewNodesStillFindsThem() throws {
        var nodes = Self.nodeNames.map { makeNode($0) }
        for position in [17, 123, 190] { nodes[position] = makeNode(Self.nodeNames[position], labels: ["gpu": "yes"]) }
        var cluster = TestCluster(nodes: nodes)
        let gpu = Placement(constraints: [PlacementConstraint(attribute: "label.gpu", operator: .equal, value: "yes")], distinctNodes: true)
        cluster.apply(makeApplication("app", makeService("s", replicas: 3, placement: gpu)))
        let (plan, _) = cluster.schedule()
        #expect(Set(plan.placements.map(\.node)) == ["n1017", "n1123", "n1190"])
        // A fourth has nowhere to go, and the reason counts every node, not a sample.
        cluster.apply(.scaleService(ServiceKey("app", "s"), replicas: 4, expectedRevision: nil))
        let (more, _) = cluster.schedule()
        #expect(more.placements.isEmpty)
        #expect(more.unplaced.map(\.reason) == ["none of 200 nodes fits: label.gpu = yes not satisfied on 197 nodes; already running an instance (distinctNodes) on 3 nodes"])
    }

    @Test func aPlanStopsAtItsPlacementLimitAndLeavesTheRestForTheNextPass() throws {
        var cluster = TestCluster(nodes: Self.nodeNames.map { makeNode($0) })
        cluster.apply(makeApplication("first", makeService("s", replicas: 30, cpu: 0.01, memoryMebibytes: 4)))
        cluster.apply(makeApplication("second", makeService("s", replicas: 30, cpu: 0.01, memoryMebibytes: 4)))
        let plan = cluster.scheduler.schedule(cluster.state, for: .all, placementLimit: 40)
        #expect(plan.placements.count == 40)
        // "second" was cut short: not evaluated, so its unplaced reasons are left as they are.
        #expect(plan.evaluated == [ServiceKey("first", "s")] && plan.unplaced.isEmpty)
        cluster.apply(.commitPlan(plan))
        let rest = cluster.scheduler.schedule(cluster.state, for: .all, placementLimit: 40)
        #expect(rest.placements.count == 20 && rest.placements.allSatisfy { $0.service == ServiceKey("second", "s") })
        #expect(rest.evaluated.count == 2)
    }
}
