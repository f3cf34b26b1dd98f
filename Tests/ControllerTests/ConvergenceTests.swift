@testable import Controller
import Manifest
import Testing
import TestSupport

/// The leader's loop (schedule, commit, nodes report) after random churn: it must settle,
/// never oscillate, and leave every slot filled or explained.
@Suite("Convergence of the leader loop")
struct ConvergenceTests {
    @Test(.cpuBound, arguments: seeds(32))
    func afterChurnEverySlotIsFilledOrExplained(seed: UInt64) throws {
        var workload = RandomWorkload(seed: seed &+ 1000)
        var cluster = TestCluster()
        for name in RandomWorkload.nodeNames { cluster.apply(.registerNode(workload.node(name))) }
        for _ in 0..<200 { cluster.apply(workload.command(for: cluster.state)) }
        // Quiet: every node up and not draining, then the loop runs alone.
        for name in RandomWorkload.nodeNames {
            cluster.apply(.nodeHeartbeat(node: name))
            cluster.apply(.setNodeDraining(node: name, draining: false))
        }
        let rounds = cluster.converge(maxRounds: 60)
        #expect(rounds < 60, "seed \(seed): the loop does not settle")
        checkInvariants(cluster.state, "seed \(seed)")
        #expect(cluster.scheduler.schedule(cluster.state, for: .all).changesNoInstance, "seed \(seed)")

        for record in cluster.state.applications.values {
            for (name, service) in record.services {
                let key = ServiceKey(record.name, name)
                let wanted = cluster.state.instances(of: key).filter { $0.desiredState == .run }
                let stalled = wanted.contains { cluster.state.isCurrent($0) && $0.status == .failed && $0.index < service.replicas }
                // A paused or failed rollout replaces nothing more, and says so.
                let held = record.rollout.map { ($0.phase == .paused || $0.phase == .failed) && $0.services.contains(name) } ?? false
                #expect(wanted.allSatisfy { $0.index < service.replicas }, "seed \(seed): \(key) runs above its count")
                for slot in 0..<service.replicas {
                    let here = wanted.filter { $0.index == slot }
                    let current = here.filter(cluster.state.isCurrent)
                    let describe = here.map { "\($0.id) r\($0.revision) \($0.status) on \($0.node), current \(cluster.state.isCurrent($0))" }
                    #expect(current.count <= 1, "seed \(seed): \(key) slot \(slot) has \(describe)")
                    if current.count == 1, here.count == 1 { continue }
                    // Otherwise the slot waits for a rollout that stopped, which happens only
                    // when a new instance failed (it keeps its slot "in progress"), the rollout
                    // is paused or failed, or the slot could not be placed, which the service
                    // says. (A rollout interrupted by another revision may leave two old
                    // instances beside the new one.)
                    #expect(stalled || held || !service.unplaced.isEmpty, "seed \(seed): \(key) slot \(slot) has \(describe)")
                }
            }
        }
        // Nothing is left waiting for a stop that nobody will confirm.
        #expect(cluster.state.instances.values.allSatisfy { $0.desiredState == .run }, "seed \(seed)")
    }
}
