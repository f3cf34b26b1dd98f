@testable import Controller
import Manifest
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The repository's example manifests, applied as a client would send them.
@Suite("Example manifests on a small cluster")
struct ExampleManifestTests {
    static let repositoryRoot: String = {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
        return path
    }()

    static func example(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: repositoryRoot + "/manifests/" + name)
        return String(decoding: try Data(contentsOf: url), as: UTF8.self)
    }

    static let nodes = [
        makeNode("x1", labels: ["role": "web"], kernel: "6.1.0-13-amd64"),
        makeNode("x2", labels: ["role": "database"], kernel: "6.1.0-13-amd64"),
        makeNode("arm1", arch: "aarch64", kernel: "5.4.0"),
    ]

    @Test(arguments: ["web.json", "shop.json", "worker.json", "batch.json"])
    func everyExampleIsPlacedAndSettles(file: String) throws {
        var cluster = TestCluster(nodes: Self.nodes)
        let result = cluster.apply(.applyApplication(manifestJSON: try Self.example(file), expectedRevision: 0))
        guard case .applicationApplied(let name, 1, _) = result else { throw TestFailure("\(file): \(result)") }
        cluster.converge()
        let record = try #require(cluster.state.applications[name])
        for service in record.application.services {
            let live = cluster.live(ServiceKey(name, service.name))
            #expect(live.count == service.replicas, "\(file): \(service.name)")
            #expect(record.services[service.name]?.unplaced == [])
            for instance in live {
                #expect(instance.ports.map(\.name) == service.network.ports.map(\.name))
            }
        }
        checkInvariants(cluster.state)
    }

    @Test func theShopsConstraintsDecideWhereItsServicesRun() throws {
        var cluster = TestCluster(nodes: Self.nodes)
        cluster.apply(.applyApplication(manifestJSON: try Self.example("shop.json"), expectedRevision: nil))
        cluster.converge()
        // api: linux, x86_64 or aarch64, kernel >= 5.10: not arm1 (5.4), spread by node name.
        #expect(Set(cluster.live(ServiceKey("shop", "api")).map(\.node)) == ["x1", "x2"])
        // web: not on the database node.
        #expect(cluster.live(ServiceKey("shop", "web")).allSatisfy { $0.node != "x2" })
    }

    @Test func theBatchJobRunsOnceAndEndsCompleted() throws {
        var cluster = TestCluster(nodes: Self.nodes)
        cluster.apply(.applyApplication(manifestJSON: try Self.example("batch.json"), expectedRevision: nil))
        cluster.schedule()
        cluster.reportAll(.running)
        cluster.reportAll(.completed)
        let before = cluster.state.instances
        cluster.converge()
        #expect(cluster.state.instances == before)
        #expect(cluster.state.instances.values.map(\.status) == [.completed])
    }
}
