import Manifest
import Testing

@Suite struct ExampleTests {
    @Test func thereAreAtLeastFourExamples() throws {
        #expect(try exampleManifestNames().count >= 4)
    }

    @Test(arguments: try exampleManifestNames())
    func exampleValidates(_ name: String) throws {
        let text = try readRepositoryFile("manifests/\(name)")
        let found = issues(of: text)
        #expect(found.isEmpty, "\(name):\n\(found.map(\.description).joined(separator: "\n"))")
    }

    @Test(arguments: try exampleManifestNames() + ["invalid/web-typos.json"])
    func exampleNamesTheSchema(_ name: String) throws {
        let application = try JSONParser.parse(try readRepositoryFile("manifests/\(name)"))
        guard case .object(let object) = application, case .string(let location)? = object["$schema"] else {
            Issue.record("\(name) has no \"$schema\"")
            return
        }
        #expect(location.hasSuffix("schema.json"))
    }

    @Test(arguments: try exampleManifestNames())
    func roundTripsThroughEncoding(_ name: String) throws {
        let first = try ManifestDecoder.decode(Array(try readRepositoryFile("manifests/\(name)").utf8))
        let encoded = first.encodedJSON()
        let second = try ManifestDecoder.decode(Array(encoded.utf8))
        #expect(first == second)
        #expect(second.encodedJSON() == encoded, "encoding is not stable")
    }

    @Test func theExamplesCoverWhatTheIssueAsksFor() throws {
        let web = try ManifestDecoder.decode(Array(try readRepositoryFile("manifests/web.json").utf8))
        #expect(web.services[0].replicas == 3)
        guard case .http? = web.services[0].health?.probe else { Issue.record("web has no HTTP health check"); return }
        let worker = try ManifestDecoder.decode(Array(try readRepositoryFile("manifests/worker.json").utf8))
        #expect(worker.services.allSatisfy { $0.network.ports.isEmpty })
        let shop = try ManifestDecoder.decode(Array(try readRepositoryFile("manifests/shop.json").utf8))
        #expect(shop.services.count == 2)
        #expect(shop.services.contains { !$0.placement.constraints.isEmpty && $0.update.canaries > 0 })
        let batch = try ManifestDecoder.decode(Array(try readRepositoryFile("manifests/batch.json").utf8))
        #expect(batch.services[0].restart.policy == .never)
        for application in [web, worker, shop, batch] {
            for service in application.services {
                #expect(service.rootfs == .directory("/var/lib/flotilla/images/busybox"))
            }
        }
    }

    @Test func invalidExampleIsRefused() throws {
        let found = issues(of: try readRepositoryFile("manifests/invalid/web-typos.json"))
        #expect(found.count >= 8)
    }
}

@Suite struct DefaultsTests {
    @Test func minimalServiceGetsSafeDefaults() throws {
        let application = try ManifestDecoder.decode(Array(#"{"name": "a", "services": [{"name": "s", "command": ["/bin/true"]}]}"#.utf8))
        let service = application.services[0]
        #expect(service.isolation.capabilities.isEmpty)
        #expect(service.isolation.noNewPrivileges)
        #expect(service.isolation.seccomp == .default)
        #expect(service.namespaces == [.pid, .mount, .uts, .ipc, .cgroup])
        #expect(service.resources.memory == .mebibytes(256))
        #expect(service.readinessMode == .exec)
        #expect(service.discoveryName == "s")
        #expect(service.restart.policy == .always)
        #expect(service.replicas == 1)
    }

    @Test func derivedDefaultsFollowOtherFields() throws {
        let text = #"{"name": "a", "services": [{"name": "s", "command": ["/x"], "network": {"mode": "private", "ports": [{"name": "http"}, {"name": "admin", "port": 9000}]}, "health": {"tcp": {"port": "http"}}, "discovery": {"port": "admin"}}]}"#
        let service = try ManifestDecoder.decode(Array(text.utf8)).services[0]
        #expect(service.namespaces.contains(.net))
        #expect(service.readinessMode == .health)
        #expect(service.discoveryPort?.name == "admin")
        #expect(service.network.ports.map(\.environmentName) == ["PORT_HTTP", "PORT_ADMIN"])
        #expect(service.network.ports[0].number == nil)
    }

    @Test func signalAndCapabilitySpellingsAreNormalised() throws {
        let text = #"{"name": "a", "services": [{"name": "s", "command": ["/x"], "stopSignal": "quit", "isolation": {"capabilities": ["net_bind_service"]}}]}"#
        let service = try ManifestDecoder.decode(Array(text.utf8)).services[0]
        #expect(service.stopSignal == .SIGQUIT)
        #expect(service.isolation.capabilities == [.CAP_NET_BIND_SERVICE])
        #expect(Capability.CAP_NET_BIND_SERVICE.number == 10)
        #expect(Capability.CAP_CHECKPOINT_RESTORE.number == 40)
        #expect(RlimitName.nofile.resource == 7)
    }
}
