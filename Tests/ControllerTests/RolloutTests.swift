@testable import Controller
import Manifest
import Testing

/// The rollout engine's decisions, driven as the leader drives them: plans computed at the
/// leader's `now`, committed through the log encoding.
@Suite("Rollouts: minHealthyTime, deadlines, success, autoRevert")
struct RolloutTests {
    let key = ServiceKey("app", "s")

    /// A cluster running revision 1 of `app` (its rollout succeeded), then revision 2 applied.
    func upgraded(replicas: Int = 1, update: UpdateStrategy, nodes: [NodeRegistration] = [makeNode("a")]) -> TestCluster {
        var cluster = TestCluster(nodes: nodes)
        var application = makeApplication("app", makeService("s", replicas: replicas, update: update, command: ["/bin/v1"]))
        cluster.apply(application)
        cluster.converge()
        application.services[0].command = ["/bin/v2"]
        cluster.apply(application)
        return cluster
    }

    @Test func anOldInstanceStopsOnlyOnceItsReplacementStayedHealthyForMinHealthyTime() throws {
        var cluster = upgraded(update: UpdateStrategy(maxSurge: 1, minHealthyTime: .seconds(30)))
        let old = try #require(cluster.live(key).first).id
        let (first, _) = cluster.schedule(at: cluster.now)
        #expect(first.placements.count == 1 && first.stops.isEmpty)
        cluster.reportAll()
        let healthyAt = cluster.now
        let (early, _) = cluster.schedule(at: healthyAt.adding(.seconds(29)))
        #expect(early.stops.isEmpty, "the old instance stopped before its replacement was healthy for 30s")
        let decisions = Reconciler.reconcile(cluster.state, for: .all, at: healthyAt.adding(.seconds(29)))
        #expect(decisions.revisitAt == healthyAt.adding(.seconds(30)))
        let (due, _) = cluster.schedule(at: healthyAt.adding(.seconds(30)))
        #expect(due.stops.map(\.id) == [old])
        #expect(due.rollouts.map(\.change) == [.progressed(updated: 1)])
        cluster.reportAll()
        #expect(cluster.schedule(at: healthyAt.adding(.seconds(31))).plan.rollouts.map(\.change) == [.succeeded])
    }

    @Test func aRolloutSucceedsOnceEverySlotIsUpdatedAndRecordsTheRevisionAsHealthy() throws {
        var cluster = upgraded(replicas: 3, update: UpdateStrategy(maxParallel: 1, minHealthyTime: .zero))
        #expect(cluster.state.applications["app"]?.lastHealthyRevision == 1)
        #expect(cluster.state.applications["app"]?.rollout?.phase == .running)
        #expect(cluster.state.applications["app"]?.rollout?.revision == 2)
        var progress: [Int] = []
        for _ in 0..<12 {
            let (plan, _) = cluster.schedule(at: cluster.now)
            for update in plan.rollouts { if case .progressed(let count) = update.change { progress.append(count) } }
            cluster.reportAll()
            if cluster.state.applications["app"]?.rollout?.phase != .running { break }
        }
        let record = try #require(cluster.state.applications["app"])
        #expect(record.rollout?.phase == .succeeded)
        #expect(record.lastHealthyRevision == 2)
        #expect(progress == [1, 2])
        #expect(record.rollout?.events.last?.message == "revision 2 rolled out")
        #expect(cluster.live(key).allSatisfy { $0.revision == 2 })
    }

    @Test func anInstanceNotHealthyByItsDeadlineFailsTheRolloutAndNothingMoreIsReplaced() throws {
        let update = UpdateStrategy(maxParallel: 2, minHealthyTime: .seconds(30), healthyDeadline: .seconds(60))
        var cluster = upgraded(replicas: 3, update: update)
        let old = cluster.live(key).map(\.id)
        let (first, outcome) = cluster.schedule(at: cluster.now)
        #expect(first.placements.map(\.index) == [0, 1])
        let good = outcome.placed[0], bad = outcome.placed[1]
        cluster.reportAll(.healthy, only: [good])
        cluster.reportAll(.unhealthy, only: [bad])
        let created = try #require(cluster.state.instances[bad]).createdAt
        let healthyAt = try #require(cluster.state.instances[good]?.statusSince)
        let (early, _) = cluster.schedule(at: healthyAt.adding(.seconds(29)))
        #expect(early.rollouts.isEmpty && early.changesNoInstance)
        // At the deadline the good one has been healthy for its 30s, which would free a place
        // for the last slot: the failure of the other holds it in the same plan.
        let (due, _) = cluster.schedule(at: created.adding(.seconds(60)))
        #expect(due.changesNoInstance)
        guard case .failed(let reason) = due.rollouts.first?.change else {
            Issue.record("no failure at the deadline: \(due.rollouts)")
            return
        }
        #expect(reason.hasPrefix("s[1] not healthy after 1m (its healthyDeadline): "), "\(reason)")
        let rollout = try #require(cluster.state.applications["app"]?.rollout)
        #expect(rollout.phase == .failed && rollout.message == "failed: \(reason)")
        cluster.reportAll(.stopped, only: [old[0], old[1]])
        // Without autoRevert it stops where it is: the last old instance keeps serving and is
        // not replaced, though maxParallel would allow one more.
        for _ in 0..<3 {
            let (plan, _) = cluster.schedule(at: created.adding(.seconds(120)))
            #expect(plan.placements.isEmpty && plan.stops.isEmpty)
        }
        #expect(cluster.live(key).filter { $0.revision == 1 }.map(\.id) == [old[2]])
        #expect(cluster.state.applications["app"]?.currentRevision == 2)
    }

    /// healthyDeadline is how long a new instance has to become healthy: one that did, in this
    /// rollout, and fails a check later (while the rollout goes on elsewhere) does not fail the
    /// rollout for a deadline long past. The rollout waits for it (progressDeadline still holds).
    @Test func anInstanceHealthyOnceInTheRolloutIsNotHeldToItsHealthyDeadlineAgain() throws {
        let update = UpdateStrategy(maxParallel: 1, minHealthyTime: .zero, healthyDeadline: .seconds(60))
        var cluster = upgraded(replicas: 2, update: update)
        let (first, placedFirst) = cluster.schedule(at: cluster.now)
        #expect(first.placements.map(\.index) == [0])
        let s0 = try #require(placedFirst.placed.first)
        let created = try #require(cluster.state.instances[s0]).createdAt
        cluster.reportAll(.healthy, only: [s0])
        // s[0] counts as updated; its old instance goes and s[1]'s replacement is placed, 30 s on.
        cluster.now = created.adding(.seconds(30))
        for _ in 0..<3 {
            cluster.schedule(at: cluster.now)
            cluster.reportAll(.stopped, only: Set(cluster.live(key).filter { $0.revision == 1 && $0.desiredState == .stop }.map(\.id)))
        }
        let s1 = try #require(cluster.live(key).first { $0.index == 1 && $0.revision == 2 }).id
        #expect(cluster.state.applications["app"]?.rollout?.updated == 1)
        // 61 s after s[0] was created (s[1] was created later, its own deadline not reached), s[0] fails a check.
        cluster.now = created.adding(.seconds(61))
        cluster.reportAll(.unhealthy, only: [s0])
        let (flapped, _) = cluster.schedule(at: created.adding(.seconds(62)))
        let failure = flapped.rollouts.compactMap { if case .failed(let reason) = $0.change { reason } else { nil } }
        #expect(failure.isEmpty, "\(failure)")
        #expect(cluster.state.applications["app"]?.rollout?.phase == .running)
        // Both healthy: it succeeds once s[1]'s old instance is gone.
        cluster.reportAll(.healthy, only: [s0, s1])
        for _ in 0..<3 {
            cluster.schedule(at: cluster.now)
            cluster.reportAll()
        }
        #expect(cluster.state.applications["app"]?.rollout?.phase == .succeeded)
    }

    /// A rollout that failed left services not rolled out whole. The next rollout of the
    /// application (a change to another service) watches them again: it does not replace their
    /// old instances unwatched, nor record the revision as healthy while they are broken.
    @Test func aServiceOfAFailedRolloutIsRolledAgainByTheNextRollout() throws {
        let update = UpdateStrategy(maxParallel: 1, minHealthyTime: .zero, healthyDeadline: .seconds(60))
        var cluster = TestCluster(nodes: [makeNode("a")])
        var application = makeApplication(
            "app", makeService("web", replicas: 2, update: update, command: ["/bin/web1"]),
            makeService("worker", update: update, command: ["/bin/worker1"]))
        cluster.apply(application)
        cluster.converge()
        application.services[0].command = ["/bin/web2"]
        cluster.apply(application)
        let (first, placed) = cluster.schedule(at: cluster.now)
        #expect(first.placements.count == 1)
        cluster.reportAll(.unhealthy, only: Set(placed.placed))
        let created = try #require(placed.placed.first.flatMap { cluster.state.instances[$0] }).createdAt
        cluster.schedule(at: created.adding(.seconds(61)))
        #expect(cluster.state.applications["app"]?.rollout?.phase == .failed)

        application.services[1].command = ["/bin/worker2"]
        cluster.apply(application)
        let rollout = try #require(cluster.state.applications["app"]?.rollout)
        #expect(rollout.services.sorted() == ["web", "worker"], "\(rollout.services)")
        // The worker rolls out; web's new instance stays unhealthy: the revision is not healthy.
        for _ in 0..<6 {
            cluster.schedule(at: cluster.now)
            cluster.reportAll(.healthy, only: Set(cluster.live(ServiceKey("app", "worker")).map(\.id)))
            cluster.reportAll(.stopped, only: Set(cluster.state.instances.values.filter { $0.desiredState == .stop }.map(\.id)))
        }
        #expect(cluster.state.applications["app"]?.lastHealthyRevision == 1)
        #expect(cluster.state.applications["app"]?.rollout?.phase != .succeeded)
    }

    /// `stop` (scale 0) during a rollout ends it with nothing run: the revision is not recorded
    /// as healthy, so a later undo or autoRevert does not go back to it.
    @Test func aRolloutScaledToZeroDoesNotMakeItsRevisionHealthy() throws {
        var cluster = upgraded(replicas: 2, update: UpdateStrategy(maxParallel: 1, minHealthyTime: .zero))
        cluster.schedule(at: cluster.now)
        cluster.reportAll(.unhealthy)
        cluster.apply(.scaleService(key, replicas: 0, expectedRevision: nil))
        for _ in 0..<3 {
            cluster.schedule(at: cluster.now)
            cluster.reportAll(.stopped)
        }
        let record = try #require(cluster.state.applications["app"])
        #expect(record.rollout?.phase == .succeeded)
        #expect(record.lastHealthyRevision == 1)
        #expect(record.rollout?.events.last?.message == "revision 2 rolled out; not recorded as healthy: s run no instance")
    }

    /// The leader decides on a copy of the state; a `scale` can commit between the decision and
    /// its plan. A success decided for two replicas does not end the rollout of four: the next
    /// pass decides again, once the two new slots run the revision.
    @Test func aSuccessDecidedBeforeAScaleUpIsNotAppliedAfterIt() throws {
        var cluster = upgraded(replicas: 2, update: UpdateStrategy(maxParallel: 2, minHealthyTime: .zero))
        try commitASuccessDecidedBeforeAScale(&cluster, to: 4, reporting: .healthy)
        #expect(cluster.state.applications["app"]?.lastHealthyRevision == 1)
        try expectTheRolloutEndsHealthy(&cluster, running: 4)
    }

    /// Decided with the service at zero replicas (nothing run), committed after a scale back to
    /// two: the revision must not become the healthy one, which `autoRevert` and `undo` go back to,
    /// until it has run at two.
    @Test func aSuccessDecidedAtZeroReplicasIsNotAppliedAfterAScaleBackUp() throws {
        var cluster = upgraded(replicas: 2, update: UpdateStrategy(maxParallel: 1, minHealthyTime: .zero))
        cluster.apply(.scaleService(key, replicas: 0, expectedRevision: nil))
        try commitASuccessDecidedBeforeAScale(&cluster, to: 2, reporting: .stopped)
        let record = try #require(cluster.state.applications["app"])
        #expect(record.lastHealthyRevision == 1 && record.revision(2)?.rolledOutAt == nil)
        try expectTheRolloutEndsHealthy(&cluster, running: 2)
    }

    /// Drives the rollout until the leader would decide its success (nodes reporting `status`),
    /// lets a scale to `replicas` commit first, then commits that plan: its step is dropped and
    /// the rollout still runs.
    func commitASuccessDecidedBeforeAScale(_ cluster: inout TestCluster, to replicas: Int, reporting status: InstanceStatus) throws {
        func decision(_ cluster: TestCluster) -> Plan { cluster.scheduler.schedule(cluster.state, for: .all, at: cluster.now) }
        for _ in 0..<4 where decision(cluster).rollouts.map(\.change) != [.succeeded] {
            cluster.schedule(at: cluster.now)
            cluster.reportAll(status)
        }
        let plan = decision(cluster)
        #expect(plan.rollouts.map(\.change) == [.succeeded])
        cluster.apply(.scaleService(key, replicas: replicas, expectedRevision: nil))
        guard case .planCommitted(let outcome) = cluster.apply(.commitPlan(plan)) else {
            Issue.record("the plan was not applied as a plan")
            return
        }
        #expect(outcome.rollouts.isEmpty, "\(outcome.rollouts)")
        let rollout = try #require(cluster.state.applications["app"]?.rollout)
        #expect(rollout.phase == .running, "\(String(describing: rollout.events.last))")
    }

    /// The next passes end the rollout with `count` instances of revision 2, which becomes the
    /// healthy one.
    func expectTheRolloutEndsHealthy(_ cluster: inout TestCluster, running count: Int) throws {
        cluster.converge()
        let record = try #require(cluster.state.applications["app"])
        #expect(record.rollout?.phase == .succeeded && record.lastHealthyRevision == 2)
        #expect(cluster.live(key).count == count && cluster.live(key).allSatisfy { $0.revision == 2 })
    }

    /// A pause holds until the operator resumes: a new revision applied meanwhile starts its
    /// rollout paused, and nothing is replaced until `resume`.
    @Test func aPausedRolloutStaysPausedWhenANewRolloutSupersedesIt() throws {
        var cluster = upgraded(replicas: 2, update: UpdateStrategy(maxParallel: 1, minHealthyTime: .zero))
        #expect(cluster.apply(.controlRollout(application: "app", action: .pause)) == .rolloutControlled(name: "app", phase: .paused, revision: 2))
        cluster.apply(makeApplication("app", makeService("s", replicas: 2, update: UpdateStrategy(maxParallel: 1, minHealthyTime: .zero), command: ["/bin/v3"])))
        let rollout = try #require(cluster.state.applications["app"]?.rollout)
        #expect(rollout.revision == 3 && rollout.phase == .paused, "\(rollout.phase)")
        for _ in 0..<3 {
            let (plan, _) = cluster.schedule(at: cluster.now)
            #expect(plan.placements.isEmpty, "replaced while paused")
            cluster.reportAll()
        }
        #expect(cluster.apply(.controlRollout(application: "app", action: .resume)) == .rolloutControlled(name: "app", phase: .running, revision: 3))
        cluster.converge()
        #expect(cluster.state.applications["app"]?.rollout?.phase == .succeeded)
        #expect(cluster.live(key).allSatisfy { $0.revision == 3 })
    }

    /// A slot whose only instance is on a node that went down, within its `lostAfter` grace,
    /// is not updated: the rollout cannot succeed on it (nothing shows the revision works).
    @Test func aSlotHeldForALostInstanceKeepsTheRolloutFromSucceeding() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        var service = makeService("s", update: UpdateStrategy(minHealthyTime: .zero), command: ["/bin/v1"])
        service.disconnect = DisconnectPolicy(lostAfter: .seconds(300))
        cluster.apply(makeApplication("app", service))
        cluster.converge()
        service.command = ["/bin/v2"]
        cluster.apply(makeApplication("app", service))
        for _ in 0..<3 {
            cluster.schedule(at: cluster.now)
            cluster.reportAll(.starting)
        }
        #expect(cluster.live(key).map(\.revision) == [2])
        cluster.apply(.markNodeDown(node: "a", lastHeartbeatSeen: nil))
        let (plan, _) = cluster.schedule(at: cluster.now)
        #expect(!plan.rollouts.contains { $0.change == .succeeded }, "\(plan.rollouts)")
        #expect(cluster.state.applications["app"]?.rollout?.phase == .running)
        #expect(cluster.state.applications["app"]?.lastHealthyRevision == 1)
    }

    /// A canary runs beside the old instance or not at all: with no room beside it, it waits
    /// (unplaced, which the service reports) instead of stopping the old instance first.
    @Test func aCanaryWithNoRoomBesideTheOldInstanceWaitsInsteadOfReplacingIt() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        var service = makeService("s", cpu: 3, update: UpdateStrategy(minHealthyTime: .zero, canaries: 1), command: ["/bin/v1"])
        cluster.apply(makeApplication("app", service))
        cluster.converge()
        let old = try #require(cluster.live(key).first).id
        service.command = ["/bin/v2"]
        cluster.apply(makeApplication("app", service))
        let (plan, _) = cluster.schedule(at: cluster.now)
        #expect(plan.placements.isEmpty && plan.stops.isEmpty, "\(plan.placements) \(plan.stops)")
        #expect(cluster.live(key).map(\.id) == [old])
    }

    @Test func aFailedRolloutWithAutoRevertRollsBackToTheLastHealthyRevision() throws {
        var cluster = upgraded(replicas: 2, update: UpdateStrategy(minHealthyTime: .zero, healthyDeadline: .seconds(60), autoRevert: true))
        cluster.schedule(at: cluster.now)
        cluster.reportAll(.unhealthy)
        let (failing, _) = cluster.schedule(at: cluster.now.adding(.seconds(61)))
        #expect(failing.rollouts.count == 1)
        let record = try #require(cluster.state.applications["app"])
        #expect(record.currentRevision == 3)
        #expect(record.application.services[0].command == ["/bin/v1"])
        #expect(record.rollout?.revertOf == 2 && record.rollout?.phase == .running)
        let started = try #require(record.rollout?.events.first?.message)
        #expect(started.hasPrefix("revision 3: reverts revision 2, whose rollout failed: s[0] not healthy after 1m (its healthyDeadline): "), "\(started)")
        #expect(started.hasSuffix("; rolling s"), "\(started)")
        cluster.converge()
        let reverted = try #require(cluster.state.applications["app"])
        #expect(reverted.rollout?.phase == .succeeded && reverted.lastHealthyRevision == 3)
        let live = cluster.live(key)
        #expect(live.count == 2 && live.allSatisfy { $0.revision == 3 && $0.status == .healthy })
        // Revision 3 runs revision 1's manifest: an undo to it would change nothing, and says
        // so instead of answering as if it had gone back (and resetting any scale).
        cluster.apply(.scaleService(key, replicas: 3, expectedRevision: nil))
        for requested in [nil, 1] as [UInt64?] {
            guard case .rejected(let error) = cluster.apply(.controlRollout(application: "app", action: .undo(to: requested))) else {
                Issue.record("undo to \(String(describing: requested)) was taken")
                continue
            }
            #expect("\(error)".contains(requested == nil ? "with another manifest" : "undo would change nothing"), "\(error)")
        }
        #expect(cluster.state.applications["app"]?.currentRevision == 3)
        #expect(cluster.state.applications["app"]?.services["s"]?.replicas == 3)
    }

    @Test func aRevertThatFailsIsNotRevertedAgain() throws {
        var cluster = upgraded(update: UpdateStrategy(minHealthyTime: .zero, healthyDeadline: .seconds(60), autoRevert: true))
        cluster.schedule(at: cluster.now)
        cluster.reportAll(.unhealthy)
        cluster.schedule(at: cluster.now.adding(.seconds(61)))
        #expect(cluster.state.applications["app"]?.currentRevision == 3)
        cluster.schedule(at: cluster.now)
        cluster.reportAll(.unhealthy)
        cluster.schedule(at: cluster.now.adding(.seconds(61)))
        let record = try #require(cluster.state.applications["app"])
        #expect(record.currentRevision == 3 && record.rollout?.phase == .failed)
        #expect(record.rollout?.events.last?.message == "not reverted: it was itself a revert")
    }

    @Test func anInstanceThatGaveUpRestartingFailsTheRolloutAtOnce() throws {
        var cluster = upgraded(update: UpdateStrategy(minHealthyTime: .zero))
        cluster.schedule(at: cluster.now)
        cluster.reportAll(.failed)
        let (plan, _) = cluster.schedule(at: cluster.now)
        guard case .failed(let reason) = plan.rollouts.first?.change else {
            Issue.record("a failed instance did not fail the rollout: \(plan.rollouts)")
            return
        }
        #expect(reason.hasPrefix("s[0] failed"), "\(reason)")
    }

    @Test func aRolloutWhoseInstancesCannotBePlacedFailsAtItsProgressDeadline() throws {
        var cluster = TestCluster(nodes: [makeNode("a", memoryBytes: gibibyte)])
        var application = makeApplication("app", makeService("s", update: UpdateStrategy(minHealthyTime: .zero, progressDeadline: .seconds(600))))
        cluster.apply(application)
        cluster.converge()
        application.services[0].resources = Resources(cpu: 0.25, memory: .mebibytes(4096), pids: 64)
        cluster.apply(application)
        let started = try #require(cluster.state.applications["app"]?.rollout).startedAt
        let (waiting, _) = cluster.schedule(at: started.adding(.seconds(599)))
        #expect(waiting.placements.isEmpty && waiting.rollouts.isEmpty && !waiting.unplaced.isEmpty)
        let (due, _) = cluster.schedule(at: started.adding(.seconds(600)))
        let unplaced = try #require(waiting.unplaced.first)
        #expect(unplaced.reason.contains("memory"), "\(unplaced.reason)")
        #expect(due.rollouts.map(\.change) == [.failed(reason: "no instance of s updated for 10m (its progressDeadline); 1 cannot be placed: \(unplaced.reason)")])
        #expect(cluster.live(key).count == 1 && cluster.live(key)[0].revision == 1, "the old instance keeps serving")
    }

    @Test func aNewApplySupersedesARunningRolloutAndCarriesItsServices() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        var application = makeApplication("app", makeService("s", command: ["/bin/v1"]), makeService("t", command: ["/bin/v1"]))
        cluster.apply(application)
        cluster.converge()
        application.services[0].command = ["/bin/v2"]
        cluster.apply(application)
        let first = try #require(cluster.state.applications["app"]?.rollout)
        #expect(first.services == ["s"])
        application.services[1].command = ["/bin/v2"]
        cluster.apply(application)
        let second = try #require(cluster.state.applications["app"]?.rollout)
        #expect(second.services == ["s", "t"] && second.revision == 3 && second.startedIndex > first.startedIndex)
        // A step decided for the superseded rollout does not touch the new one.
        cluster.apply(.commitPlan(Plan(rollouts: [RolloutUpdate(application: "app", startedIndex: first.startedIndex, change: .failed(reason: "late"))])))
        #expect(cluster.state.applications["app"]?.rollout?.phase == .running)
        cluster.converge()
        #expect(cluster.state.applications["app"]?.rollout?.phase == .succeeded)
    }

    @Test func aRestartAndAKeyChangeStartRollouts() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        var service = makeService("s")
        service.kv = [KeyBinding(key: "app/flag", env: "FLAG")]
        cluster.apply(makeApplication("app", service))
        cluster.converge()
        cluster.apply(.kvTransaction(KVTransaction(operations: [.set(try KVKey(validating: "app/flag"), Array("on".utf8))])))
        let keyed = try #require(cluster.state.applications["app"]?.rollout)
        #expect(keyed.phase == .running && keyed.services == ["s"])
        #expect(keyed.events.first?.message == "revision 1: a key read by s changed; rolling s")
        cluster.converge()
        #expect(cluster.state.applications["app"]?.rollout?.phase == .succeeded)
        cluster.apply(.restartService(key))
        let rollout = try #require(cluster.state.applications["app"]?.rollout)
        #expect(rollout.phase == .running && rollout.services == ["s"] && rollout.revision == 1)
        #expect(rollout.events.first?.message == "revision 1: s restarted; rolling s")
        cluster.converge()
        #expect(cluster.state.applications["app"]?.rollout?.phase == .succeeded)
    }

    @Test func aPausedRolloutReplacesNothingAndRunsNoDeadlineUntilResumed() throws {
        var cluster = upgraded(replicas: 3, update: UpdateStrategy(maxParallel: 1, minHealthyTime: .zero, healthyDeadline: .seconds(60)))
        let (first, outcome) = cluster.schedule(at: cluster.now)
        #expect(first.placements.count == 1)
        #expect(cluster.apply(.controlRollout(application: "app", action: .pause)) == .rolloutControlled(name: "app", phase: .paused, revision: 2))
        #expect(cluster.apply(.controlRollout(application: "app", action: .pause)).error?.code == "rollout_state")
        // The instance already starting goes on and its old one stops; nothing else moves, and
        // an hour later no deadline has failed it.
        cluster.reportAll()
        let later = cluster.now.adding(.seconds(3600))
        for _ in 0..<3 {
            let (plan, _) = cluster.schedule(at: later)
            #expect(plan.placements.isEmpty && plan.rollouts.isEmpty, "\(plan)")
            cluster.reportAll()
        }
        #expect(cluster.live(key).filter { $0.revision == 1 }.count == 2)
        #expect(cluster.state.instances[outcome.placed[0]]?.status == .healthy)
        #expect(cluster.apply(.controlRollout(application: "app", action: .resume)) == .rolloutControlled(name: "app", phase: .running, revision: 2))
        #expect(cluster.apply(.controlRollout(application: "app", action: .resume)).error?.code == "rollout_state")
        let resumed = try #require(cluster.state.applications["app"]?.rollout)
        #expect(resumed.resumedAt == cluster.now.adding(.seconds(-1)) && resumed.progressAt == resumed.resumedAt)
        #expect(resumed.events.suffix(2).map(\.message) == ["paused", "resumed"])
        for _ in 0..<8 {
            cluster.schedule(at: cluster.now)
            cluster.reportAll()
        }
        #expect(cluster.state.applications["app"]?.rollout?.phase == .succeeded)
        #expect(cluster.live(key).allSatisfy { $0.revision == 2 })
    }

    @Test func undoGoesBackToARevisionThatRolledOutWholeAndRefusesOthers() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        var application = makeApplication("app", makeService("s", replicas: 2, command: ["/bin/v1"]))
        cluster.apply(application)
        cluster.converge()
        application.services[0].command = ["/bin/v2"]
        cluster.apply(application)
        cluster.converge()
        application.services[0].command = ["/bin/v3"]
        cluster.apply(application)
        cluster.schedule()
        cluster.reportAll(.unhealthy)
        // Revision 3 never rolled out; 1 and 2 did.
        let record = try #require(cluster.state.applications["app"])
        #expect(record.revisions.map { $0.rolledOutAt != nil } == [true, true, false])
        #expect(cluster.apply(.controlRollout(application: "app", action: .undo(to: 3))).error?.code == "revision_not_rolled_out")
        #expect(cluster.apply(.controlRollout(application: "app", action: .undo(to: 9))).error?.code == "revision_not_found")
        #expect(cluster.apply(.controlRollout(application: "nope", action: .undo(to: nil))).error?.code == "application_not_found")
        // Without a revision: the latest before the current one that rolled out whole.
        #expect(cluster.apply(.controlRollout(application: "app", action: .undo(to: nil))) == .rolloutControlled(name: "app", phase: .running, revision: 4))
        var now = try #require(cluster.state.applications["app"])
        #expect(now.application.services[0].command == ["/bin/v2"] && now.revisions.last?.origin == "undo to revision 2")
        #expect(now.rollout?.events.first?.message == "revision 4: undo to revision 2; rolling s")
        cluster.converge()
        #expect(cluster.live(key).allSatisfy { $0.revision == 4 } && cluster.state.applications["app"]?.rollout?.phase == .succeeded)
        // To a named one, further back.
        #expect(cluster.apply(.controlRollout(application: "app", action: .undo(to: 1))) == .rolloutControlled(name: "app", phase: .running, revision: 5))
        now = try #require(cluster.state.applications["app"])
        #expect(now.application.services[0].command == ["/bin/v1"])
        #expect(cluster.apply(.controlRollout(application: "app", action: .undo(to: 5))).error?.code == "revision_not_rolled_out")
    }

    @Test func canariesRunBesideTheOldInstancesAndTheRolloutWaitsForPromotion() throws {
        var cluster = upgraded(replicas: 3, update: UpdateStrategy(maxParallel: 1, minHealthyTime: .zero, progressDeadline: .seconds(600), canaries: 1))
        let old = cluster.live(key).map(\.id)
        #expect(cluster.state.applications["app"]?.rollout?.canary?.counts == ["s": 1])
        let (first, placed) = cluster.schedule(at: cluster.now)
        #expect(first.placements.map(\.index) == [0] && first.placements[0].replaces.isEmpty && first.stops.isEmpty)
        #expect(first.placements[0].reason == "canary beside \(old[0]) (revision 1, now 2)")
        let early = cluster.apply(.controlRollout(application: "app", action: .promote))
        #expect(early.error?.message.contains("do not all count as updated yet") == true, "\(early)")
        cluster.reportAll()
        let (ready, _) = cluster.schedule(at: cluster.now)
        #expect(ready.rollouts.map(\.change) == [.awaitingPromotion] && ready.changesNoInstance)
        // Waiting for an operator: the old instances all serve beside the canary, and no
        // deadline ends the wait.
        for _ in 0..<3 {
            let (plan, _) = cluster.schedule(at: cluster.now.adding(.seconds(3600)))
            #expect(plan.changesNoInstance, "\(plan)")
        }
        let waiting = try #require(cluster.state.applications["app"]?.rollout)
        #expect(waiting.phase == .running && waiting.canary?.awaitingPromotion == true)
        #expect(cluster.live(key).count == 4 && Set(old).isSubset(of: cluster.live(key).map(\.id)))
        #expect(cluster.apply(.controlRollout(application: "app", action: .promote)) == .rolloutControlled(name: "app", phase: .running, revision: 2))
        #expect(cluster.apply(.controlRollout(application: "app", action: .promote)).error?.message.contains("promoted already") == true)
        let (promoted, _) = cluster.schedule(at: cluster.now)
        #expect(promoted.stops.map(\.id) == [old[0]] && promoted.placements.map(\.index) == [1])
        for _ in 0..<8 {
            cluster.reportAll()
            cluster.schedule(at: cluster.now)
            #expect(cluster.live(key).count <= 4)
        }
        #expect(cluster.state.applications["app"]?.rollout?.phase == .succeeded)
        let live = cluster.live(key)
        #expect(live.count == 3 && live.allSatisfy { $0.revision == 2 } && live.contains { $0.id == placed.placed[0] }, "the canary stays")
    }

    @Test func autoPromoteGoesOnOnceEveryCanaryCountsAsUpdated() throws {
        let update = UpdateStrategy(maxParallel: 2, minHealthyTime: .seconds(20), canaries: 2, autoPromote: true)
        var cluster = upgraded(replicas: 4, update: update)
        let (first, _) = cluster.schedule(at: cluster.now)
        #expect(first.placements.map(\.index) == [0, 1])
        cluster.reportAll()
        let healthyAt = cluster.now
        #expect(cluster.schedule(at: healthyAt.adding(.seconds(19))).plan.decidesNothing)
        let (due, _) = cluster.schedule(at: healthyAt.adding(.seconds(20)))
        #expect(due.rollouts.map(\.change) == [.promoted] && due.changesNoInstance)
        #expect(cluster.state.applications["app"]?.rollout?.events.last?.message == "canaries updated and promoted (autoPromote)")
        let (next, _) = cluster.schedule(at: healthyAt.adding(.seconds(21)))
        #expect(next.stops.count == 2 && next.placements.map(\.index) == [2, 3])
    }

    @Test func aNewServiceRunsNoCanaries() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(makeApplication("app", makeService("s", replicas: 2, update: UpdateStrategy(minHealthyTime: .zero, canaries: 1))))
        #expect(cluster.state.applications["app"]?.rollout?.canary == nil)
        cluster.converge()
        #expect(cluster.live(key).count == 2 && cluster.state.applications["app"]?.rollout?.phase == .succeeded)
    }

    @Test func aReplacementJoinsTheCatalogOnlyAfterMinHealthyTimeInTheEntryThatStopsTheOldOne() throws {
        var service = makeService("s", update: UpdateStrategy(maxSurge: 1, minHealthyTime: .seconds(30)), command: ["/bin/v1"])
        service.discovery = Discovery(enabled: true, name: "web")
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(makeApplication("app", service))
        cluster.converge()
        let old = try #require(cluster.live(key).first).id
        #expect(Catalog(cluster.state).instances(named: "web").map(\.id) == [old], "a new service's instances pass once ready")
        service.command = ["/bin/v2"]
        cluster.apply(makeApplication("app", service))
        let (_, outcome) = cluster.schedule(at: cluster.now)
        let new = try #require(outcome.placed.first)
        cluster.reportAll()
        let healthyAt = cluster.now
        #expect(cluster.state.instances[new]?.status == .healthy)
        #expect(Catalog(cluster.state).instances(named: "web").map(\.id) == [old], "healthy, not yet for its minHealthyTime")
        #expect(Catalog(cluster.state).instances(named: "web", passingOnly: false).map(\.id).sorted() == [old, new].sorted())
        #expect(cluster.schedule(at: healthyAt.adding(.seconds(29))).plan.decidesNothing)
        let (due, _) = cluster.schedule(at: healthyAt.adding(.seconds(30)))
        #expect(due.settled == [new] && due.stops.map(\.id) == [old])
        // One entry: the new one passes and the old one is gone from the catalog.
        #expect(Catalog(cluster.state).instances(named: "web").map(\.id) == [new])
    }
}
