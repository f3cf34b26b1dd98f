@testable import Controller
import Manifest
import Testing

@Suite("Applying, deleting, scaling and restarting applications")
struct ApplicationCommandTests {
    let web = makeApplication("web", makeService("web", replicas: 3), makeService("worker", replicas: 1))

    @Test func applyCreatesTheFirstRevisionWithEveryService() throws {
        var cluster = TestCluster()
        let result = cluster.apply(web)
        guard case .applicationApplied(let name, let revision, let diff) = result else { throw TestFailure("unexpected \(result)") }
        #expect(name == "web" && revision == 1)
        #expect(diff.added == ["web", "worker"])
        let record = try #require(cluster.state.applications["web"])
        #expect(record.currentRevision == 1)
        #expect(record.application == web)
        #expect(record.services["web"]?.replicas == 3 && record.services["worker"]?.replicas == 1)
        let stored = try #require(record.revisions.last)
        #expect(stored.appliedIndex == cluster.index && stored.appliedAt == cluster.now)
        #expect(try ManifestDecoder.decode(Array(stored.manifestJSON.utf8)) == web)
        #expect(cluster.state.lastChangeIndex == cluster.index)
    }

    @Test func applyingTheSameManifestAgainMakesNoRevision() throws {
        var cluster = TestCluster()
        cluster.apply(web)
        let before = cluster.state
        let result = cluster.apply(web)
        guard case .applicationApplied(_, let revision, let diff) = result else { throw TestFailure("unexpected \(result)") }
        #expect(revision == 1 && diff.isEmpty)
        #expect(cluster.state == before)
    }

    @Test func checkAndSetAcceptsTheCurrentRevisionAndRefusesAStaleOne() throws {
        var cluster = TestCluster()
        #expect(cluster.apply(web, expectedRevision: 0).error == nil)
        var changed = web
        changed.services[0].command = ["/bin/v2"]
        #expect(cluster.apply(changed, expectedRevision: 1).error == nil)
        let before = cluster.state
        changed.services[0].command = ["/bin/v3"]
        // Two clients read revision 1; the second to apply must be told the current revision.
        #expect(cluster.apply(changed, expectedRevision: 1).error == .revisionConflict(application: "web", expected: 1, current: 2))
        #expect(cluster.apply(changed, expectedRevision: 0).error == .revisionConflict(application: "web", expected: 0, current: 2))
        #expect(cluster.state == before)
        let absent = makeApplication("absent", makeService("a"))
        #expect(cluster.apply(absent, expectedRevision: 4).error == .revisionConflict(application: "absent", expected: 4, current: 0))
        #expect(cluster.state == before)
        #expect(ControllerError.revisionConflict(application: "web", expected: 1, current: 2).code == "revision_conflict")
    }

    @Test func anInvalidManifestIsRefusedByTheStateMachineWithEveryLocatedIssue() throws {
        var cluster = TestCluster()
        cluster.apply(web)
        let before = cluster.state
        let invalid = """
            {"name": "web", "services": [
              {"name": "web", "command": ["/bin/true"], "replicas": -1},
              {"name": "worker", "comand": ["/bin/true"]}
            ]}
            """
        let error = try #require(cluster.apply(.applyApplication(manifestJSON: invalid, expectedRevision: nil)).error)
        #expect(error.code == "invalid_manifest")
        let paths = error.issues.map(\.path.description)
        #expect(paths.contains("services[0].replicas"))
        #expect(paths.contains("services[1].comand"))
        #expect(cluster.state == before)
        let syntax = try #require(cluster.apply(.applyApplication(manifestJSON: "{\"name\": ", expectedRevision: nil)).error)
        #expect(syntax.code == "invalid_manifest" && syntax.issues.count == 1)
        #expect(cluster.state == before)
    }

    @Test func aProcessChangeReplacesInstancesWhileACountChangeMovesThemInPlace() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(web)
        cluster.converge()
        let webKey = ServiceKey("web", "web")
        let workerKey = ServiceKey("web", "worker")
        let originalWorkers = cluster.live(workerKey).map(\.id)

        var scaled = web
        scaled.services[1].replicas = 2
        scaled.services[1].description = "now two"
        guard case .applicationApplied(_, 2, let diff) = cluster.apply(scaled) else { throw TestFailure("not applied") }
        #expect(diff.updatedInPlace == ["worker"] && diff.unchanged == ["web"])
        // Both services' instances now run revision 2 without having been replaced.
        #expect(cluster.live(workerKey).map(\.id) == originalWorkers)
        #expect(cluster.live(workerKey).allSatisfy { $0.revision == 2 })
        #expect(cluster.live(webKey).allSatisfy { $0.revision == 2 })

        var changed = scaled
        changed.services[0].command = ["/bin/other"]
        guard case .applicationApplied(_, 3, let diff3) = cluster.apply(changed) else { throw TestFailure("not applied") }
        #expect(diff3.replaced == ["web"])
        #expect(cluster.live(webKey).allSatisfy { $0.revision == 2 })
        #expect(cluster.live(workerKey).allSatisfy { $0.revision == 3 })
    }

    @Test func aServiceRemovedFromTheManifestHasItsInstancesStopped() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(web)
        cluster.converge()
        let smaller = makeApplication("web", makeService("web", replicas: 3))
        guard case .applicationApplied(_, 2, let diff) = cluster.apply(smaller) else { throw TestFailure("not applied") }
        #expect(diff.removed == ["worker"])
        let workers = cluster.state.instances(of: ServiceKey("web", "worker"))
        #expect(!workers.isEmpty && workers.allSatisfy { $0.desiredState == .stop })
        cluster.reportAll()
        #expect(cluster.state.instances(of: ServiceKey("web", "worker")).isEmpty)
    }

    @Test func deleteStopsEveryInstanceAndHonoursCheckAndSet() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(web)
        cluster.converge()
        #expect(cluster.apply(.deleteApplication(name: "web", expectedRevision: 7)).error == .revisionConflict(application: "web", expected: 7, current: 1))
        #expect(cluster.apply(.deleteApplication(name: "nope", expectedRevision: nil)).error == .applicationNotFound("nope"))
        guard case .applicationDeleted(_, let stopping) = cluster.apply(.deleteApplication(name: "web", expectedRevision: 1)) else {
            throw TestFailure("not deleted")
        }
        #expect(stopping.count == 4)
        #expect(cluster.state.applications["web"] == nil)
        #expect(cluster.state.instances.values.allSatisfy { $0.desiredState == .stop && $0.stopReason == "application web was deleted" })
        cluster.reportAll()
        #expect(cluster.state.instances.isEmpty)
    }

    @Test func scaleSetsTheCountUntilTheNextApply() throws {
        var cluster = TestCluster()
        cluster.apply(web)
        let key = ServiceKey("web", "web")
        #expect(cluster.apply(.scaleService(key, replicas: 5, expectedRevision: 1)).error == nil)
        #expect(cluster.state.applications["web"]?.services["web"]?.replicas == 5)
        let before = cluster.state
        #expect(cluster.apply(.scaleService(key, replicas: 10_001, expectedRevision: nil)).error == .invalidReplicas(key, 10_001))
        #expect(cluster.apply(.scaleService(key, replicas: 2, expectedRevision: 3)).error?.code == "revision_conflict")
        #expect(cluster.apply(.scaleService(ServiceKey("web", "db"), replicas: 2, expectedRevision: nil)).error == .serviceNotFound(ServiceKey("web", "db")))
        #expect(cluster.state == before)
        // Applying the manifest again, even unchanged, restores its count: it is what was declared.
        guard case .applicationApplied(_, 1, let diff) = cluster.apply(web) else { throw TestFailure("not applied") }
        #expect(diff.isEmpty)
        #expect(cluster.state.applications["web"]?.services["web"]?.replicas == 3)
        cluster.apply(.scaleService(key, replicas: 4, expectedRevision: nil))
        var changed = web
        changed.services[0].command = ["/bin/v2"]
        cluster.apply(changed)
        #expect(cluster.state.applications["web"]?.services["web"]?.replicas == 3)
    }

    @Test func restartRecordsItsIndex() throws {
        var cluster = TestCluster()
        cluster.apply(web)
        let key = ServiceKey("web", "worker")
        #expect(cluster.apply(.restartService(key)) == .serviceRestarted(key, restartIndex: cluster.index))
        #expect(cluster.state.applications["web"]?.services["worker"]?.restartIndex == cluster.index)
        #expect(cluster.apply(.restartService(ServiceKey("shop", "web"))).error == .applicationNotFound("shop"))
    }

    @Test func revisionHistoryIsBoundedButKeepsWhatInstancesRun() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        var application = makeApplication("app", makeService("s", update: UpdateStrategy(maxParallel: 1)))
        cluster.apply(application)
        cluster.converge()
        // The instance keeps running revision 1 while nobody schedules: 14 more revisions.
        for version in 2...15 {
            application.services[0].command = ["/bin/v\(version)"]
            cluster.apply(application)
        }
        let record = try #require(cluster.state.applications["app"])
        #expect(record.revisions.count == ApplicationRecord.revisionHistoryLimit)
        #expect(record.revisions.first?.number == 1)
        #expect(record.revisions.map(\.number) == [1] + Array(7...15))
        let instance = try #require(cluster.live(ServiceKey("app", "s")).first)
        #expect(cluster.state.manifest(of: instance)?.command == ["/bin/true"])
        cluster.converge()
        application.services[0].command = ["/bin/v16"]
        cluster.apply(application)
        #expect(cluster.state.applications["app"]?.revisions.map(\.number) == Array(7...16))
    }
}
