import Controller
import Discovery
import Logging
import TestSupport
import Testing

@testable import Agent

/// How the agent turns its catalog into the DNS server's zone: where `ns.DOMAIN` points, and
/// what cannot be answered and is said so.
@Suite struct DiscoveryDNSZoneTests {
    static func instance(_ id: String, node: String, address: String) -> CatalogInstance {
        CatalogInstance(
            id: id, name: "web", service: ServiceKey("shop", "web"), node: node, address: address,
            port: AssignedPort(name: "http", number: 8080), ports: [AssignedPort(name: "http", number: 8080)], tags: [], revision: 1,
            weight: 1, health: .passing, modifiedIndex: 1)
    }

    /// A wildcard listen address is no address a client can send to: the nameserver glue is
    /// the node's advertised IP address then, and nothing when that is a host name.
    @Test func theNameserverIsGivenAnAddressClientsCanReach() {
        func glue(_ host: String, _ advertised: String?) -> [String] {
            DiscoveryDNS.nameserverAddresses(settings: DNSSettings(host: host), advertisedHost: advertised).map(\.description)
        }
        #expect(glue("127.0.0.1", "10.0.0.5") == ["127.0.0.1"])
        #expect(glue("0.0.0.0", "10.0.0.5") == ["10.0.0.5"])
        #expect(glue("::", "fd00::5") == ["fd00::5"])
        #expect(glue("0.0.0.0", "node1.lan") == [])
        #expect(glue("0.0.0.0", nil) == [])
    }

    /// A node advertised by host name has no address DNS can answer: its instances and the node
    /// are left out of the zone and named, with the fix.
    @Test func nodesAdvertisedByHostNameAreReportedNotSilentlyDropped() {
        let catalog = Catalog(
            instances: [Self.instance("web.1", node: "n1", address: "10.0.0.1"), Self.instance("web.2", node: "n2", address: "node2.lan")],
            nodes: ["n1": "10.0.0.1", "n2": "node2.lan"], index: 3)
        let (zone, unaddressed) = DiscoveryDNS.dnsCatalog(catalog, settings: DNSSettings(), nameservers: [])
        #expect(zone.instances.map(\.node) == ["n1"])
        #expect(zone.nodes.map(\.name) == ["n1"])
        #expect(unaddressed.map(\.path) == ["node n2", "instance web.2"])
        #expect(unaddressed.allSatisfy { $0.message.contains("node2.lan") && $0.message.contains("--advertise IP:PORT") })
    }

    /// What is left out is logged when it changes, not at every catalog change.
    @Test(.timeLimit(.minutes(1))) func whatIsLeftOutIsLoggedOnceUntilItChanges() async throws {
        let label = "dns-zone-\(#function)"
        let dns = try await DiscoveryDNS.start(
            settings: DNSSettings(host: "127.0.0.1", port: 0), advertisedHost: nil, logger: RecordingLogHandler.logger(label))
        let hostNamed = Self.instance("web.2", node: "n2", address: "node2.lan")
        for index in 1...3 {
            dns.update(Catalog(instances: [hostNamed], nodes: ["n2": "node2.lan"], index: UInt64(index)))
        }
        dns.update(Catalog(instances: [], nodes: [:], index: 4))
        dns.update(Catalog(instances: [hostNamed], nodes: ["n2": "node2.lan"], index: 5))
        await dns.stop()
        let warnings = RecordingLogHandler.lines(of: label).filter { $0.contains("left out of DNS") }
        #expect(warnings.count == 4, "\(warnings)")
        #expect(warnings.first?.contains("node n2") == true)
    }
}
