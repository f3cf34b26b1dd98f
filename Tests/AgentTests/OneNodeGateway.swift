import Controller
import Foundation
import Raft

@testable import Agent

/// A one-voter Raft group in this process, elected, with the agent's gateway on it: the
/// agent's reads and writes on a real node and a real log, without an agentd process.
struct OneNodeGateway {
    let node: RaftNode<ControllerMachine>
    let gateway: ClusterGateway
    private let directory: String

    init(name: String) async throws {
        directory = NSTemporaryDirectory() + "flotilla-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        // Small segments, as TestCluster's: opening a new log fills its first segment with zeros
        // on the calling thread, a pool thread here (64 MiB by default, fsynced each MiB).
        let storage = try DurableLogStorage.open(
            directory: directory, bootstrap: ConfState(voters: [1]), walOptions: WriteAheadLog.Options(segmentBytes: 256 * 1024))
        let feed = ChangeFeed()
        let members = MembershipDirectory()
        let network = InProcessNetwork()
        node = try RaftNode(
            options: .init(raft: RaftConfig(id: 1, electionTimeoutTicks: 10, heartbeatIntervalTicks: 1), tickInterval: .milliseconds(10)),
            storage: storage, machine: ControllerMachine(feed: feed, directory: members), transport: network)
        network.register(1, node)
        await node.start()
        // Elected at once, as a dev agent is: a loaded machine may be slow to time out.
        await node.campaign()
        let elected = ContinuousClock.now + .seconds(30)
        while node.lastKnownLeader != 1, ContinuousClock.now < elected { try await Task.sleep(for: .milliseconds(10)) }
        gateway = ClusterGateway(node: node, feed: feed, directory: members)
    }

    /// Stops the node and removes its log.
    func stop() async {
        await node.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// A node `name` of 2 CPUs and 1 GiB, as an agent registers itself.
    static func registration(_ name: String) -> NodeRegistration {
        NodeRegistration(
            name: name, address: "\(name):7070", labels: [:],
            attributes: NodeAttributes(os: "linux", arch: "x86_64", kernel: "6.1", cpus: 2, memoryBytes: 1 << 30),
            capacity: NodeCapacity(cpuMillicores: 2000, memoryBytes: 1 << 30), dynamicPorts: .defaultDynamic)
    }
}
