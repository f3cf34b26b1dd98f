@testable import Controller
import Manifest
import Testing

/// The catalog derived from the state: who is registered, when, and what lookups answer.
@Suite struct CatalogTests {
    /// Two ports, the second advertised, two tags, weight 3, a health check.
    static func api(replicas: Int = 2, health: Bool = true, enabled: Bool = true) -> Service {
        var service = makeService("api", replicas: replicas, ports: [Port(name: "admin"), Port(name: "http")])
        service.discovery = Discovery(enabled: enabled, name: "backend", tags: ["v2", "primary"], port: "http", weight: 3)
        if health { service.health = HealthCheck(probe: .tcp(TCPCheck(port: "http"))) }
        return service
    }

    static func cluster(_ service: Service) -> TestCluster {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        cluster.apply(makeApplication("shop", service))
        cluster.schedule()
        return cluster
    }

    @Test func anInstanceIsRegisteredOnceRunningAndPassesOnceHealthy() {
        var cluster = Self.cluster(Self.api())
        #expect(Catalog(cluster.state).instances.isEmpty, "placed, not started: nothing to register")
        cluster.reportAll(.starting)
        #expect(Catalog(cluster.state).instances.isEmpty)
        cluster.reportAll(.running)
        var catalog = Catalog(cluster.state)
        #expect(catalog.instances.count == 2)
        #expect(catalog.instances.allSatisfy { $0.health == .critical }, "a health check not passed yet")
        #expect(catalog.instances(named: "backend").isEmpty)
        #expect(catalog.instances(named: "backend", passingOnly: false).count == 2)
        cluster.reportAll(.healthy)
        catalog = Catalog(cluster.state)
        #expect(catalog.instances(named: "backend").count == 2)
        #expect(catalog.index == cluster.state.lastChangeIndex)
    }

    @Test func withoutAHealthCheckRunningIsPassing() {
        var cluster = Self.cluster(Self.api(health: false))
        cluster.reportAll(.running)
        #expect(Catalog(cluster.state).instances(named: "backend").count == 2)
    }

    @Test func anEntryCarriesWhatTheManifestAndItsNodeSay() throws {
        var cluster = Self.cluster(Self.api(replicas: 1))
        cluster.reportAll(.healthy)
        let entry = try #require(Catalog(cluster.state).instances.first)
        let record = try #require(cluster.state.instances[entry.id])
        #expect(entry.name == "backend")
        #expect(entry.service == ServiceKey("shop", "api"))
        #expect(entry.node == record.node)
        #expect(entry.address == record.node, "the host of the node's address \(record.node):7070")
        #expect(entry.port == record.ports.first { $0.name == "http" })
        #expect(entry.ports == record.ports)
        #expect(entry.tags == ["v2", "primary"])
        #expect(entry.weight == 3)
        #expect(entry.revision == 1)
    }

    @Test func turningUnhealthyTakesAnInstanceOutOfPassingLookups() throws {
        var cluster = Self.cluster(Self.api())
        cluster.reportAll(.healthy)
        let sick = try #require(Catalog(cluster.state).instances.first)
        cluster.reportAll(.unhealthy, only: [sick.id])
        let catalog = Catalog(cluster.state)
        #expect(catalog.instances(named: "backend").map(\.id) == catalog.instances.map(\.id).filter { $0 != sick.id })
        #expect(catalog.instances.first { $0.id == sick.id }?.health == .critical)
        cluster.reportAll(.healthy, only: [sick.id])
        #expect(Catalog(cluster.state).instances(named: "backend").count == 2, "back once healthy")
    }

    /// Deregistration happens in the entry that tells the instance to stop, before its node
    /// has acted on it: the instance still runs, and nobody is sent to it.
    @Test func anInstanceToldToStopIsDeregisteredBeforeItsNodeStopsIt() throws {
        var cluster = Self.cluster(Self.api())
        cluster.reportAll(.healthy)
        #expect(cluster.apply(.scaleService(ServiceKey("shop", "api"), replicas: 1, expectedRevision: nil)).error == nil)
        cluster.schedule()
        let stopping = cluster.state.instances.values.filter { $0.desiredState == .stop }
        #expect(stopping.count == 1)
        #expect(stopping.allSatisfy { $0.status == .healthy }, "its node has not stopped it yet")
        let catalog = Catalog(cluster.state)
        #expect(catalog.instances.count == 1)
        #expect(!catalog.instances.contains { $0.id == stopping.first?.id })
    }

    @Test func aNodeMarkedDownTakesItsInstancesAndItselfOut() throws {
        var cluster = Self.cluster(Self.api())
        cluster.reportAll(.healthy)
        #expect(Catalog(cluster.state).nodes == ["a": "a", "b": "b"])
        let seen = try #require(cluster.state.nodes["a"]?.lastHeartbeat)
        cluster.apply(.markNodeDown(node: "a", lastHeartbeatSeen: seen))
        let catalog = Catalog(cluster.state)
        #expect(catalog.nodes == ["b": "b"])
        #expect(catalog.instances.allSatisfy { $0.node == "b" })
        #expect(catalog.instances.count == cluster.state.instances(on: "b").count)
    }

    @Test func disabledDiscoveryRegistersNothing() {
        var cluster = Self.cluster(Self.api(enabled: false))
        cluster.reportAll(.healthy)
        #expect(Catalog(cluster.state).instances.isEmpty)
    }

    @Test func lookupsFilterByTagAndNodeAndTheSummaryCounts() throws {
        var cluster = TestCluster(nodes: [makeNode("a"), makeNode("b")])
        var web = makeService("web", replicas: 2, ports: [Port(name: "http")])
        web.discovery.tags = ["v1"]
        cluster.apply(makeApplication("shop", Self.api(replicas: 2), web))
        cluster.converge()
        let sick = try #require(Catalog(cluster.state).instances(named: "backend").first)
        cluster.reportAll(.unhealthy, only: [sick.id])
        let catalog = Catalog(cluster.state)
        #expect(catalog.instances(named: "backend", tag: "v2").count == 1)
        #expect(catalog.instances(named: "backend", tag: "v1").isEmpty)
        #expect(catalog.instances(named: "web", tag: "v1").count == 2)
        #expect(catalog.instances(named: "backend", node: sick.node, passingOnly: false).allSatisfy { $0.node == sick.node })
        #expect(catalog.instances(named: "nothing").isEmpty)
        #expect(
            catalog.services == [
                CatalogService(name: "backend", tags: ["primary", "v2"], instances: 2, passing: 1),
                CatalogService(name: "web", tags: ["v1"], instances: 2, passing: 2),
            ])
    }

    @Test(arguments: [("10.0.0.1:4647", "10.0.0.1"), ("[fd00::1]:4647", "fd00::1"), ("fd00::1", "fd00::1"), ("node-a", "node-a")])
    func aNodeAddressGivesItsHost(_ address: String, _ host: String) {
        #expect(NodeAddress.host(of: address) == host)
    }

    /// The drain delay is fixed in the entry that deregisters: the node waits it out before the
    /// stop signal, whatever the manifest says by then.
    @Test func aPassingInstanceToldToStopCarriesItsDrainDelay() throws {
        var service = Self.api()
        service.discovery.drainDelay = .seconds(5)
        var cluster = Self.cluster(service)
        cluster.reportAll(.healthy)
        let ids = Catalog(cluster.state).instances.map(\.id)
        cluster.reportAll(.unhealthy, only: [ids[0]])
        cluster.apply(.deleteApplication(name: "shop", expectedRevision: nil))
        #expect(cluster.state.instances[ids[1]]?.drainDelay == .seconds(5), "it was passing: deregistered by this entry")
        #expect(cluster.state.instances[ids[0]]?.drainDelay == nil, "failing its check: no traffic to drain")
        let restored = try ClusterState.restore(from: cluster.state.snapshot())
        #expect(restored.instances[ids[1]]?.drainDelay == .seconds(5))
    }

    @Test func noDrainDelayIsCarriedWhenTheManifestHasNone() {
        var cluster = Self.cluster(Self.api())
        cluster.reportAll(.healthy)
        cluster.apply(.deleteApplication(name: "shop", expectedRevision: nil))
        #expect(cluster.state.instances.values.allSatisfy { $0.desiredState == .stop && $0.drainDelay == nil })
    }
}
