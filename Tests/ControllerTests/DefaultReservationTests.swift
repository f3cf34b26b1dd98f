@testable import Controller
import Manifest
import Testing

/// A service that names no resources reserves a tenth of a core and 64Mi (as Nomad reserves
/// 100 MHz), not its 1-core limit: twenty `sleep`s fit on a two-core node.
@Suite("Scheduler: the default reservation")
struct DefaultReservationTests {
    let key = ServiceKey("sleepers", "sleep")

    @Test func twentyReplicasWithoutResourcesFitOnATwoCoreNode() throws {
        var cluster = TestCluster(nodes: [makeNode("a", cpuMillicores: 2000, memoryBytes: 4 * gibibyte)])
        let manifest = #"{"name": "sleepers", "services": [{"name": "sleep", "command": ["/bin/sleep", "1d"], "replicas": 20}]}"#
        #expect(cluster.apply(.applyApplication(manifestJSON: manifest, expectedRevision: nil)).error == nil)
        let (plan, outcome) = cluster.schedule()
        #expect(plan.unplaced.isEmpty, "\(plan.unplaced)")
        #expect(outcome.placed.count == 20)
        #expect(cluster.live(key).allSatisfy { $0.reservedCPUMillicores == 100 && $0.reservedMemoryBytes == 64 * mebibyte })
        checkInvariants(cluster.state)
        // The limits are what they were: the supervisor still caps each at 1 core and 256Mi.
        let service = try #require(cluster.state.applications["sleepers"]?.application.services.first)
        #expect(service.resources.cpu == 1 && service.resources.memory == .mebibytes(256))
        // A twenty-first does not fit: the default is a reservation, not nothing.
        cluster.apply(.scaleService(key, replicas: 21, expectedRevision: nil))
        #expect(cluster.schedule().plan.unplaced.first?.reason == "insufficient cpu on the only node (needs 0.1 cpu)")
    }

    @Test func aWrittenCPULimitIsStillReservedInFull() throws {
        var cluster = TestCluster(nodes: [makeNode("a", cpuMillicores: 2000, memoryBytes: 4 * gibibyte)])
        let manifest = #"{"name": "sleepers", "services": [{"name": "sleep", "command": ["/bin/sleep", "1d"], "replicas": 5, "resources": {"cpu": 0.5}}]}"#
        cluster.apply(.applyApplication(manifestJSON: manifest, expectedRevision: nil))
        let (plan, outcome) = cluster.schedule()
        #expect(outcome.placed.count == 4)
        #expect(plan.unplaced.first?.reason == "insufficient cpu on the only node (needs 0.5 cpu)")
    }
}
