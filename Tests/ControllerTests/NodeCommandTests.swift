@testable import Controller
import Manifest
import Testing

@Suite("Registering nodes, heartbeats, down and draining")
struct NodeCommandTests {
    @Test func registrationCreatesAReadyNodeAndHeartbeatsKeepItAlive() throws {
        var cluster = TestCluster()
        #expect(cluster.apply(.registerNode(makeNode("a", labels: ["zone": "eu-1"]))) == .nodeUpdated(name: "a", status: .ready))
        let registeredAt = cluster.now
        let node = try #require(cluster.state.nodes["a"])
        #expect(node.status == .ready && node.lastHeartbeat == registeredAt && node.registeredIndex == cluster.index)
        #expect(node.registration.labels == ["zone": "eu-1"])
        cluster.apply(.nodeHeartbeat(node: "a"))
        #expect(cluster.state.nodes["a"]?.lastHeartbeat == cluster.now)
        #expect(cluster.apply(.nodeHeartbeat(node: "b")).error == .nodeNotFound("b"))
    }

    @Test(arguments: [
        (makeNode(""), "a node name"),
        (makeNode("has space"), "a node name"),
        (makeNode("a", cpuMillicores: 0), "capacity"),
        (makeNode("a", memoryBytes: 0), "capacity"),
        (makeNode("a", ports: PortRange(30_000, 20_000)), "port range"),
        (makeNode("a", ports: PortRange(0, 100)), "port range"),
        (makeNode("a", ports: PortRange(60_000, 70_000)), "port range"),
    ])
    func anUnusableRegistrationIsRefused(registration: NodeRegistration, expected: String) throws {
        var cluster = TestCluster()
        let error = try #require(cluster.apply(.registerNode(registration)).error)
        #expect(error.code == "invalid_node")
        #expect(error.message.contains(expected), "\(error.message)")
        #expect(cluster.state == ClusterState())
    }

    @Test func markingANodeDownLosesItsInstancesAndTheNextHeartbeatBringsItBack() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        cluster.apply(makeApplication("web", makeService("web", replicas: 4)))
        cluster.converge()
        let onA = cluster.state.instances(on: "a")
        #expect(onA.count == 2)
        let seen = try #require(cluster.state.nodes["a"]?.lastHeartbeat)
        #expect(cluster.apply(.markNodeDown(node: "a", lastHeartbeatSeen: seen)) == .nodeUpdated(name: "a", status: .down))
        #expect(cluster.state.instances(on: "a").allSatisfy { $0.status == .lost && $0.events.last?.message == "node a is down" })
        #expect(cluster.state.instances(on: "b").allSatisfy { $0.status == .healthy })
        cluster.apply(.nodeHeartbeat(node: "a"))
        #expect(cluster.state.nodes["a"]?.status == .ready)
        // Still lost: only the node's own report says what survived.
        #expect(cluster.state.instances(on: "a").allSatisfy { $0.status == .lost })
        cluster.apply(.reportInstanceStatus(node: "a", reports: onA.map { InstanceStatusReport(id: $0.id, status: .running) }))
        #expect(cluster.state.instances(on: "a").allSatisfy { $0.status == .running })
    }

    @Test func markDownIsRefusedWhenTheNodeHeartbeatedSinceTheLeaderLooked() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        let seen = try #require(cluster.state.nodes["a"]?.lastHeartbeat)
        cluster.apply(.nodeHeartbeat(node: "a"))
        let before = cluster.state
        let error = cluster.apply(.markNodeDown(node: "a", lastHeartbeatSeen: seen)).error
        #expect(error == .staleHeartbeat(node: "a", lastHeartbeat: cluster.now.adding(.seconds(-1))))
        #expect(cluster.state == before)
        #expect(cluster.apply(.markNodeDown(node: "zz", lastHeartbeatSeen: nil)).error == .nodeNotFound("zz"))
    }

    @Test func instancesToldToStopAreForgottenWhenTheirNodeGoesDown() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(makeApplication("web", makeService("web", replicas: 2)))
        cluster.converge()
        cluster.apply(.scaleService(ServiceKey("web", "web"), replicas: 1, expectedRevision: nil))
        cluster.schedule()
        #expect(cluster.state.instances.values.filter { $0.desiredState == .stop }.count == 1)
        cluster.apply(.markNodeDown(node: "a", lastHeartbeatSeen: nil))
        #expect(cluster.state.instances.count == 1)
        #expect(cluster.state.instances.values.first?.status == .lost)
    }

    @Test func drainingIsKeptAcrossReRegistrationAndDownPeriods() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        #expect(cluster.apply(.setNodeDraining(node: "a", draining: true)) == .nodeUpdated(name: "a", status: .draining))
        cluster.apply(.markNodeDown(node: "a", lastHeartbeatSeen: nil))
        #expect(cluster.state.nodes["a"]?.status == .down)
        cluster.apply(.registerNode(makeNode("a", cpuMillicores: 8000)))
        #expect(cluster.state.nodes["a"]?.status == .draining)
        #expect(cluster.state.nodes["a"]?.registration.capacity.cpuMillicores == 8000)
        cluster.apply(.setNodeDraining(node: "a", draining: false))
        #expect(cluster.state.nodes["a"]?.status == .ready)
    }
}

@Suite("Instance status reports")
struct StatusReportTests {
    @Test func reportsUpdateOnlyTheReportingNodesInstances() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        cluster.apply(makeApplication("web", makeService("web", replicas: 2)))
        cluster.schedule()
        let onA = try #require(cluster.state.instances(on: "a").first)
        let onB = try #require(cluster.state.instances(on: "b").first)
        let result = cluster.apply(
            .reportInstanceStatus(
                node: "a",
                reports: [
                    InstanceStatusReport(id: onA.id, status: .unhealthy, message: "GET /healthz: 503"),
                    InstanceStatusReport(id: onB.id, status: .failed),
                    InstanceStatusReport(id: "web.web.9-99", status: .running),
                    InstanceStatusReport(id: onA.id, status: .lost),
                ]))
        #expect(result == .statusRecorded(accepted: 1, ignored: [onB.id, "web.web.9-99", onA.id]))
        let updated = try #require(cluster.state.instances[onA.id])
        #expect(updated.status == .unhealthy)
        #expect(updated.events.last == InstanceEvent(time: cluster.now, status: .unhealthy, message: "GET /healthz: 503"))
        #expect(cluster.state.instances[onB.id]?.status == .pending)
        #expect(cluster.apply(.reportInstanceStatus(node: "x", reports: [])).error == .nodeNotFound("x"))
    }

    @Test func exitInformationIsKeptAndEventsAreBounded() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(makeApplication("web", makeService("web")))
        cluster.schedule()
        let id = try #require(cluster.state.instances.keys.first)
        for attempt in 1...15 {
            let exit = ExitInfo(code: Int32(attempt), signal: nil, oomKilled: attempt == 15)
            cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .starting, exit: exit, message: "exit \(attempt)")]))
        }
        let instance = try #require(cluster.state.instances[id])
        #expect(instance.events.count == InstanceRecord.eventLimit)
        #expect(instance.events.first?.message == "exit 6" && instance.events.last?.message == "exit 15")
        #expect(instance.exit == ExitInfo(code: 15, signal: nil, oomKilled: true))
        // The same report twice is one event.
        let lastChange = cluster.state.lastChangeIndex
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .starting, exit: instance.exit, message: "exit 15")]))
        #expect(cluster.state.instances[id]?.events.count == InstanceRecord.eventLimit)
        #expect(cluster.state.lastChangeIndex == lastChange)
    }

    @Test func anInstanceToldToStopIsForgottenOnceItsNodeReportsItEnded() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(makeApplication("web", makeService("web")))
        cluster.schedule()
        let id = try #require(cluster.state.instances.keys.first)
        cluster.apply(.deleteApplication(name: "web", expectedRevision: nil))
        // Pending on a live node: the node may be starting it, so it must confirm the stop.
        #expect(cluster.state.instances[id]?.desiredState == .stop)
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .running)]))
        #expect(cluster.state.instances[id]?.status == .running)
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .stopped, exit: ExitInfo(signal: 15))]))
        #expect(cluster.state.instances[id] == nil)
    }
}

extension StatusReportTests {
    @Test func anEndedInstanceCannotBeReportedBackToLife() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        cluster.apply(makeApplication("web", makeService("web", ports: [Port(name: "http", number: 8080)])))
        cluster.schedule()
        let id = try #require(cluster.state.instances.keys.first)
        cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .failed, exit: ExitInfo(code: 3))]))
        // Its port is free for others now; a late "running" must not take it back.
        let result = cluster.apply(.reportInstanceStatus(node: "a", reports: [InstanceStatusReport(id: id, status: .running)]))
        #expect(result == .statusRecorded(accepted: 0, ignored: [id]))
        #expect(cluster.state.instances[id]?.status == .failed)
    }
}
