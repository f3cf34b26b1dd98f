import Foundation
import TestSupport
import Testing
@testable import Raft

/// The application of the driver tests: an append-only list of strings.
struct AppendOnlyList: RaftStateMachine {
    var items: [String] = []

    mutating func apply(_ entry: Entry) {
        items.append(String(decoding: entry.data, as: UTF8.self))
    }

    func snapshot() -> [UInt8] {
        Array(items.joined(separator: "\n").utf8)
    }

    mutating func restore(from snapshot: [UInt8]) throws {
        items = snapshot.isEmpty ? [] : String(decoding: snapshot, as: UTF8.self).components(separatedBy: "\n")
    }
}

typealias TestNode = RaftNode<AppendOnlyList>

/// A test's disk whose syncs it stalls or holds.
protocol HookedDisk {
    var disk: UnsyncedChanges { get }
}

struct Timeout: Error, CustomStringConvertible {
    var description: String
}

/// Polls `condition` every 10 ms until it holds, failing after `timeout`.
func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
    guard try await pollCondition(timeout: timeout, every: .milliseconds(10), condition) else {
        throw Timeout(description: "timed out waiting for \(what)")
    }
}

/// Three (or more) real nodes in one process: each with its own data directory, WAL and
/// snapshots on disk, talking through an `InProcessNetwork`, ticking every 10 ms.
final class TestCluster {
    let network = InProcessNetwork()
    let root: TemporaryDirectory
    let ids: [NodeID]
    let snapshotEveryAppliedEntries: UInt64
    private(set) var nodes: [NodeID: TestNode] = [:]
    /// Each running node's unsynced writes, which `kill` loses.
    private var disks: [NodeID: UnsyncedChanges] = [:]

    let snapshotEveryAppliedBytes: Int
    /// The WAL's `deferLimit` on every node.
    let walDeferLimit: Duration

    init(size: Int = 3, snapshotEveryAppliedEntries: UInt64 = 10_000, snapshotEveryAppliedBytes: Int = 64 << 20,
         walDeferLimit: Duration = .seconds(1), label: String = #function) throws {
        root = try TemporaryDirectory(label)
        ids = (1...UInt64(size)).map { $0 }
        self.snapshotEveryAppliedEntries = snapshotEveryAppliedEntries
        self.snapshotEveryAppliedBytes = snapshotEveryAppliedBytes
        self.walDeferLimit = walDeferLimit
    }

    func directory(of id: NodeID) -> String { root.appending("node-\(id)") }

    /// Starts (or restarts, from its directory) node `id`, on `disk` if given (a test's hooks).
    @discardableResult
    func start(_ id: NodeID, disk: UnsyncedChanges = UnsyncedChanges()) async throws -> TestNode {
        let storage = try DurableLogStorage.open(
            directory: directory(of: id), bootstrap: ConfState(voters: Set(ids)),
            walOptions: WriteAheadLog.Options(segmentBytes: 256 * 1024, unsyncedChanges: disk, deferLimit: walDeferLimit))
        let options = TestNode.Options(
            raft: RaftConfig(id: id, electionTimeoutTicks: 10, heartbeatIntervalTicks: 1),
            tickInterval: .milliseconds(10), snapshotEveryAppliedEntries: snapshotEveryAppliedEntries,
            snapshotEveryAppliedBytes: snapshotEveryAppliedBytes)
        let node = try TestNode(options: options, storage: storage, machine: AppendOnlyList(), transport: network)
        network.register(id, node)
        await node.start()
        nodes[id] = node
        disks[id] = disk
        return node
    }

    func startAll() async throws {
        for id in ids { try await start(id) }
    }

    /// Starts every node on a disk with hooks of its own, made by `make`; returns them by node.
    func startAll<Hooks: HookedDisk>(_ make: () -> Hooks) async throws -> [NodeID: Hooks] {
        var made: [NodeID: Hooks] = [:]
        for id in ids {
            let hooks = make()
            made[id] = hooks
            try await start(id, disk: hooks.disk)
        }
        return made
    }

    /// Crashes node `id` as a power cut would: off the network, every write since its last
    /// sync lost (`UnsyncedChanges`), and nothing written after; then the node is stopped,
    /// which can no longer flush anything.
    func kill(_ id: NodeID) async throws {
        network.unregister(id)
        let outcome = try disks.removeValue(forKey: id)?.cutPower()
        if let outcome { print("node \(id) killed: \(outcome)") }
        await nodes.removeValue(forKey: id)?.stop()
    }

    /// Stops node `id` gracefully: what it queued reaches its disk.
    func stop(_ id: NodeID) async {
        network.unregister(id)
        disks[id] = nil
        await nodes.removeValue(forKey: id)?.stop()
    }

    func node(_ id: NodeID) throws -> TestNode {
        try #require(nodes[id], "node \(id) is not running")
    }

    /// Waits until the running nodes agree on one leader among them, and returns it.
    func waitForLeader(timeout: Duration = .seconds(10)) async throws -> NodeID {
        var found: NodeID = 0
        try await eventually("a leader", timeout: timeout) {
            var leaders: Set<NodeID> = []
            for node in nodes.values {
                let status = await node.status
                leaders.insert(status.softState.role == .leader ? node.id : 0)
            }
            var views: Set<NodeID> = []
            for node in nodes.values { views.insert(await node.leader) }
            leaders.remove(0)
            guard leaders.count == 1, let leader = leaders.first, views == [leader] else { return false }
            found = leader
            return true
        }
        return found
    }

    /// Waits until every running node's list equals `expected`.
    func waitForItems(_ expected: [String], timeout: Duration = .seconds(10)) async throws {
        try await eventually("every node to apply \(expected.count) items", timeout: timeout) {
            for node in nodes.values where await node.withStateMachine({ $0.items }) != expected { return false }
            return true
        }
    }

    func stopAll() async {
        for id in Array(nodes.keys) { await stop(id) }
    }
}
