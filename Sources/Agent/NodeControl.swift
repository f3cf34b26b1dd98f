import AgentAPI
import Controller
import Manifest
import Synchronization

/// What a node worker runs: its node's instances, and the service each one that should run
/// runs.
struct NodeWork: Sendable {
    var instances: [InstanceRecord]
    var services: [InstanceID: Service]
    /// The values of the keys those services bind (`kv`), by key.
    var keyValues: [String: [UInt8]] = [:]
}

/// How a node worker reaches the cluster: a server's worker uses its own replica
/// (``ReplicaNodeControl``); a client's follows the servers (``ServerFollower``).
protocol NodeControl: Sendable {
    /// Registers the node (again, after an agent restart or when the cluster forgot it).
    func register(_ registration: NodeRegistration) async throws
    /// Tells the leader the node is alive; false when the cluster does not know the node.
    func heartbeat(node: String) async throws -> Bool
    /// Commits status reports on the node's instances.
    func report(node: String, _ reports: [InstanceStatusReport]) async throws
    /// What the node should run now; nil while there is no copy of the state to go by (a
    /// worker then leaves what runs alone rather than stop it).
    func work(of node: String) async -> NodeWork?
    /// Returns once the work may have changed since `version` (or after `timeout`), with the
    /// version now.
    func waitForChange(after version: UInt64, timeout: Duration) async -> UInt64
}

/// A server's node worker: its own replica of the state, writes through Raft.
///
/// A server that has just started replays its log but may not have the entries committed
/// while it was away: its replica can be missing instances that run here, and a worker going
/// by it would stop them. So the first read is linearizable (Raft ReadIndex: the replica has
/// applied everything committed before it); until one succeeds there is no work to go by.
final class ReplicaNodeControl: NodeControl {
    let gateway: ClusterGateway
    private let caughtUp = Atomic<Bool>(false)

    init(gateway: ClusterGateway) {
        self.gateway = gateway
    }

    func register(_ registration: NodeRegistration) async throws {
        let (result, _) = try await gateway.submit(.registerNode(registration))
        if let error = result.error { throw error }
    }

    func heartbeat(node: String) async throws -> Bool {
        try await gateway.heartbeat(node: node)
    }

    func report(node: String, _ reports: [InstanceStatusReport]) async throws {
        _ = try await gateway.submit(.reportInstanceStatus(node: node, reports: reports))
    }

    func work(of node: String) async -> NodeWork? {
        let consistent = !caughtUp.load(ordering: .acquiring)
        let work = try? await gateway.read(consistent: consistent) { state in
            let mine = state.instances(on: node)
            var services: [InstanceID: Service] = [:]
            for instance in mine where instance.desiredState == .run {
                services[instance.id] = state.manifest(of: instance)
            }
            return NodeWork(instances: mine, services: services, keyValues: state.boundValues(of: services.values))
        }
        if work != nil && consistent { caughtUp.store(true, ordering: .releasing) }
        return work
    }

    func waitForChange(after version: UInt64, timeout: Duration) async -> UInt64 {
        await gateway.feed.pace(after: version, timeout: timeout)
    }
}
