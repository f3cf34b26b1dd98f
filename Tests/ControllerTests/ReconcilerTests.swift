@testable import Controller
import Manifest
import Testing

@Suite("Reconciler: counts, rollouts, lost nodes, batch jobs")
struct ReconcilerTests {
    let key = ServiceKey("app", "s")

    @Test func scaleUpFillsNewSlotsAndScaleDownStopsTheHighestFirst() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        cluster.apply(makeApplication("app", makeService("s", replicas: 3)))
        cluster.converge()
        #expect(cluster.live(key).map(\.index) == [0, 1, 2])
        cluster.apply(.scaleService(key, replicas: 5, expectedRevision: nil))
        let (up, _) = cluster.schedule()
        #expect(up.placements.map(\.index) == [3, 4] && up.stops.isEmpty)
        cluster.reportAll()
        cluster.apply(.scaleService(key, replicas: 2, expectedRevision: nil))
        let (down, outcome) = cluster.schedule()
        let stopped = down.stops.compactMap { cluster.state.instances[$0.id]?.index }
        #expect(stopped == [4, 3, 2])
        #expect(down.stops.allSatisfy { $0.reason == "scaled down to 2" })
        #expect(down.placements.isEmpty && outcome.stopped.count == 3)
        cluster.reportAll()
        #expect(cluster.live(key).map(\.index) == [0, 1])
        #expect(cluster.state.instances.count == 2)
    }

    @Test(arguments: [(4, 1, 0), (4, 2, 0), (5, 2, 1), (3, 1, 1), (6, 3, 2), (2, 5, 0), (3, 1, 5)])
    func aNewRevisionRollsOutInStepsOfMaxParallelWithinMaxSurge(replicas: Int, maxParallel: Int, maxSurge: Int) throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b"), makeNode("c")])
        var application = makeApplication("app", makeService("s", replicas: replicas, update: UpdateStrategy(maxParallel: maxParallel, maxSurge: maxSurge)))
        cluster.apply(application)
        cluster.converge()
        application.services[0].command = ["/bin/v2"]
        cluster.apply(application)

        var rounds = 0
        while true {
            rounds += 1
            let (plan, _) = cluster.schedule()
            checkInvariants(cluster.state, "round \(rounds)")
            let live = cluster.live(key)
            let newNotReady = live.filter { $0.revision == 2 && $0.status != .healthy }
            let available = live.filter { $0.status == .healthy }
            #expect(newNotReady.count <= maxParallel, "round \(rounds): \(newNotReady.count) new instances starting at once")
            #expect(live.count <= replicas + maxSurge, "round \(rounds): \(live.count) live instances")
            #expect(available.count >= replicas - maxParallel, "round \(rounds): only \(available.count) available")
            if rounds == 1 { #expect(plan.placements.count == min(maxParallel, replicas)) }
            if plan.changesNoInstance { break }
            cluster.reportAll()
            try #require(rounds < 40, "the rollout does not finish")
        }
        let live = cluster.live(key)
        #expect(live.count == replicas && live.allSatisfy { $0.revision == 2 && $0.status == .healthy })
        #expect(Set(live.map(\.index)) == Set(0..<replicas))
        // One round per batch of maxParallel, one more to stop the last old instances when
        // surging, and the final round that finds nothing to do.
        let batches = (replicas + maxParallel - 1) / maxParallel
        #expect(rounds <= batches + 2)
    }

    @Test func surgeStartsTheNewInstanceBesideTheOldAndStopsTheOldOnceReady() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        var application = makeApplication("app", makeService("s", replicas: 2, update: UpdateStrategy(maxParallel: 1, maxSurge: 1)))
        cluster.apply(application)
        cluster.converge()
        let old = cluster.live(key).map(\.id)
        application.services[0].command = ["/bin/v2"]
        cluster.apply(application)
        let (first, _) = cluster.schedule()
        #expect(first.stops.isEmpty && first.placements.count == 1 && first.placements[0].replaces.isEmpty)
        #expect(first.placements[0].reason == "will replace \(old[0]) (revision 1, now 2)")
        // Not ready yet: nothing more happens.
        let (waiting, _) = cluster.schedule()
        #expect(waiting.changesNoInstance)
        cluster.reportAll()
        let (second, _) = cluster.schedule()
        #expect(second.stops.map(\.id) == [old[0]])
        #expect(second.placements.count == 1 && second.placements[0].index == 1)
    }

    @Test func withoutRoomToSurgeTheSchedulerReplacesInstead() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        var application = makeApplication(
            "app", makeService("s", replicas: 2, update: UpdateStrategy(maxParallel: 1, maxSurge: 1), placement: Placement(distinctNodes: true)))
        cluster.apply(application)
        cluster.converge()
        let old = cluster.live(key)[0]
        application.services[0].command = ["/bin/v2"]
        cluster.apply(application)
        let (plan, outcome) = cluster.schedule()
        let placement = try #require(plan.placements.first)
        #expect(placement.replaces == [old.id] && placement.node == old.node)
        #expect(placement.reason == "replaces \(old.id) (revision 1, now 2); no room to surge")
        #expect(outcome.stopped == [old.id])
        cluster.converge()
        #expect(cluster.live(key).allSatisfy { $0.revision == 2 })
    }

    @Test func aNewRevisionThatNeverBecomesHealthyStopsAfterMaxParallel() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        var application = makeApplication("app", makeService("s", replicas: 4, update: UpdateStrategy(maxParallel: 2)))
        cluster.apply(application)
        cluster.converge()
        application.services[0].command = ["/bin/broken"]
        cluster.apply(application)
        for _ in 0..<5 {
            cluster.schedule()
            cluster.reportAll(.unhealthy, only: Set(cluster.live(key).filter { $0.revision == 2 }.map(\.id)))
            cluster.reportAll(.stopped, only: Set(cluster.state.instances.values.filter { $0.desiredState == .stop }.map(\.id)))
        }
        let live = cluster.live(key)
        #expect(live.filter { $0.revision == 2 }.count == 2)
        #expect(live.filter { $0.revision == 1 && $0.status == .healthy }.count == 2)
    }

    @Test func instancesOnANodeThatWentDownAreReplacedAtOnce() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        cluster.apply(makeApplication("app", makeService("s", replicas: 4, update: UpdateStrategy(maxParallel: 1))))
        cluster.converge()
        let lost = cluster.state.instances(on: "a")
        #expect(lost.count == 2)
        cluster.apply(.markNodeDown(node: "a", lastHeartbeatSeen: nil))
        let (plan, outcome) = cluster.schedule(.node("a"))
        #expect(Set(plan.stops.map(\.id)) == Set(lost.map(\.id)))
        #expect(plan.stops.allSatisfy { $0.reason == "lost with node a" })
        // Not a rollout: both are replaced in the same plan, whatever maxParallel says.
        #expect(plan.placements.count == 2 && plan.placements.allSatisfy { $0.node == "b" })
        #expect(Set(plan.placements.map(\.index)) == Set(lost.map(\.index)))
        #expect(plan.placements.allSatisfy { $0.reason.hasSuffix("lost with node a") })
        #expect(outcome.placed.count == 2)
        // Lost instances on a down node are forgotten: nobody will report on them.
        #expect(cluster.state.instances(on: "a").isEmpty)
        #expect(cluster.live(key).count == 4)
    }

    @Test func lostInstancesKeepTheirSlotsForTheirServicesLostAfterThenAreReplaced() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        var service = makeService("s", replicas: 4)
        service.disconnect = DisconnectPolicy(lostAfter: .seconds(60))
        cluster.apply(makeApplication("app", service))
        cluster.converge()
        let onA = Set(cluster.state.instances(on: "a").map(\.id))
        #expect(onA.count == 2)
        cluster.apply(.markNodeDown(node: "a", lastHeartbeatSeen: nil))
        let downAt = cluster.now
        // Within the grace: nothing is stopped or placed, at any time before it ends.
        for elapsed in [0, 30, 59] {
            let (plan, _) = cluster.schedule(.node("a"), at: downAt.adding(.seconds(elapsed)))
            #expect(plan.stops.isEmpty && plan.placements.isEmpty, "after \(elapsed)s: \(plan)")
        }
        // The leader is told when to look again: nothing in the state will change by then.
        #expect(Reconciler.reconcile(cluster.state, for: .all, at: downAt.adding(.seconds(30))).revisitAt == downAt.adding(.seconds(60)))
        // A report that arrives before the node is marked up again does not restart the clock.
        cluster.apply(.reportInstanceStatus(node: "a", reports: onA.sorted().map { InstanceStatusReport(id: $0, status: .healthy, exit: nil, message: "") }))
        #expect(cluster.schedule(.node("a"), at: downAt.adding(.seconds(59))).plan.placements.isEmpty)
        // Past it: replaced on b.
        let (plan, _) = cluster.schedule(.node("a"), at: downAt.adding(.seconds(61)))
        #expect(Set(plan.stops.map(\.id)) == onA)
        #expect(plan.placements.count == 2 && plan.placements.allSatisfy { $0.node == "b" })
    }

    @Test func aNodeBackWithinTheGraceKeepsItsInstances() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        var service = makeService("s", replicas: 4)
        service.disconnect = DisconnectPolicy(lostAfter: .seconds(60))
        cluster.apply(makeApplication("app", service))
        cluster.converge()
        let onA = cluster.state.instances(on: "a").map(\.id).sorted()
        cluster.apply(.markNodeDown(node: "a", lastHeartbeatSeen: nil))
        let downAt = cluster.now
        cluster.apply(.nodeHeartbeat(node: "a"))
        cluster.apply(.reportInstanceStatus(node: "a", reports: onA.map { InstanceStatusReport(id: $0, status: .healthy, exit: nil, message: "") }))
        let (plan, _) = cluster.schedule(.all, at: downAt.adding(.seconds(120)))
        #expect(plan.stops.isEmpty && plan.placements.isEmpty, "\(plan)")
        #expect(cluster.state.instances(on: "a").map(\.id).sorted() == onA)
    }

    @Test func aDrainingNodeIsEmptiedAsARollout() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        cluster.apply(makeApplication("app", makeService("s", replicas: 4, update: UpdateStrategy(maxParallel: 1))))
        cluster.converge()
        cluster.apply(.setNodeDraining(node: "a", draining: true))
        let (first, _) = cluster.schedule(.node("a"))
        #expect(first.placements.count == 1 && first.placements[0].node == "b")
        #expect(first.placements[0].reason.contains("node a is draining"))
        let rounds = cluster.converge()
        #expect(rounds >= 2)
        #expect(cluster.state.instances(on: "a").isEmpty)
        #expect(cluster.live(key).count == 4 && cluster.live(key).allSatisfy { $0.node == "b" })
    }

    @Test func pastTheDrainDeadlineWhatRemainsIsReplacedAtOnce() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        cluster.apply(makeApplication("app", makeService("s", replicas: 4, update: UpdateStrategy(maxParallel: 1))))
        cluster.converge()
        let deadline = cluster.now.adding(.seconds(60))
        cluster.apply(.setNodeDraining(node: "a", draining: true, deadline: deadline))
        // Before the deadline: one at a time, as the update strategy says; look again at it.
        #expect(Reconciler.reconcile(cluster.state, for: .all, at: deadline.adding(.seconds(-1))).revisitAt == deadline)
        #expect(cluster.schedule(.node("a"), at: deadline.adding(.seconds(-1))).plan.placements.count == 1)
        // Past it: everything still there is stopped and replaced in one plan.
        let remaining = Set(cluster.state.instances(on: "a").filter { $0.desiredState == .run }.map(\.id))
        #expect(remaining.count >= 1)
        let (plan, _) = cluster.schedule(.node("a"), at: deadline)
        #expect(remaining.isSubset(of: Set(plan.stops.map(\.id))), "\(plan.stops)")
        #expect(plan.stops.filter { remaining.contains($0.id) }.allSatisfy { $0.reason == "the drain deadline of node a passed" })
        #expect(cluster.live(key).count == 4 && cluster.live(key).allSatisfy { $0.node == "b" })
    }

    @Test func anIneligibleNodeKeepsItsInstancesButTakesNoNewOnes() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        cluster.apply(makeApplication("app", makeService("s", replicas: 2)))
        cluster.converge()
        let onA = cluster.state.instances(on: "a").map(\.id)
        #expect(!onA.isEmpty)
        cluster.apply(.setNodeEligibility(node: "a", eligible: false))
        #expect(cluster.state.nodes["a"]?.status == .ineligible)
        let (kept, _) = cluster.schedule(.node("a"))
        #expect(kept.stops.isEmpty && kept.placements.isEmpty, "\(kept)")
        cluster.apply(.scaleService(key, replicas: 6, expectedRevision: nil))
        let (plan, _) = cluster.schedule(.service(key))
        #expect(plan.placements.count == 4 && plan.placements.allSatisfy { $0.node == "b" })
        #expect(cluster.state.instances(on: "a").map(\.id) == onA)
        cluster.apply(.setNodeEligibility(node: "a", eligible: true))
        #expect(cluster.state.nodes["a"]?.status == .ready)
    }

    @Test func restartReplacesEveryInstanceCreatedBeforeIt() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(makeApplication("app", makeService("s", replicas: 3, update: UpdateStrategy(maxParallel: 2))))
        cluster.converge()
        let before = Set(cluster.live(key).map(\.id))
        cluster.apply(.restartService(key))
        let (first, _) = cluster.schedule(.service(key))
        #expect(first.placements.count == 2 && first.placements.allSatisfy { $0.reason.hasSuffix("(restarted)") })
        cluster.converge()
        let after = cluster.live(key)
        #expect(after.count == 3 && Set(after.map(\.id)).isDisjoint(with: before))
        #expect(after.allSatisfy { $0.revision == 1 })
    }

    @Test func aCompletedBatchJobIsNotRunAgainUntilItChanges() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        var application = makeApplication("report", makeService("job", restart: .never))
        let job = ServiceKey("report", "job")
        cluster.apply(application)
        cluster.schedule()
        cluster.reportAll(.running)
        cluster.reportAll(.completed)
        let first = try #require(cluster.state.instances(of: job).first)
        #expect(first.status == .completed && first.desiredState == .run)
        for _ in 0..<3 {
            #expect(cluster.schedule().plan.changesNoInstance)
        }
        // A failed run is left alone too: the job ran once.
        application.services[0].command = ["/bin/false"]
        cluster.apply(application)
        let (rerun, _) = cluster.schedule()
        #expect(rerun.stops.map(\.id) == [first.id] && rerun.placements.count == 1)
        #expect(cluster.state.instances[first.id] == nil)
        cluster.reportAll(.failed)
        #expect(cluster.schedule().plan.changesNoInstance)
        // Restarting a batch job runs it again.
        cluster.apply(.restartService(job))
        let (again, _) = cluster.schedule()
        #expect(again.placements.count == 1)
    }

    @Test func theReconcilerOnlyLooksAtWhatTheEvaluationNames() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(makeApplication("one", makeService("s")))
        cluster.apply(makeApplication("two", makeService("s"), makeService("t")))
        #expect(Reconciler.reconcile(cluster.state, for: .application("two")).evaluated == [ServiceKey("two", "s"), ServiceKey("two", "t")])
        #expect(Reconciler.reconcile(cluster.state, for: .service(ServiceKey("two", "t"))).requests.map(\.service) == [ServiceKey("two", "t")])
        #expect(Reconciler.reconcile(cluster.state, for: .node("a")).requests.count == 3)
        #expect(Reconciler.reconcile(cluster.state, for: .application("three")).evaluated.isEmpty)
    }
}
