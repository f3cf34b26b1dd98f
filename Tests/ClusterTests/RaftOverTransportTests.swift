import Foundation
import Raft
import Testing
import TestSupport

@testable import Cluster

/// The application of these tests: the committed strings, in order.
struct CommittedStrings: RaftStateMachine {
    var items: [String] = []

    mutating func apply(_ entry: Entry) {
        items.append(String(decoding: entry.data, as: UTF8.self))
    }

    func snapshot() -> [UInt8] { Array(items.joined(separator: "\n").utf8) }

    mutating func restore(from snapshot: [UInt8]) throws {
        items = snapshot.isEmpty ? [] : String(decoding: snapshot, as: UTF8.self).components(separatedBy: "\n")
    }
}

/// Three real Raft nodes, each with its WAL on disk, talking only through `ClusterTransport`
/// over mutual TLS on loopback.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct RaftOverTransportTests {
    typealias Node = RaftNode<CommittedStrings>

    final class Member {
        let id: NodeID
        let transport: ClusterTransport
        let node: Node

        init(id: NodeID, pki: TestPKI, directory: String, voters: Set<NodeID>, port: Int = 0, snapshotEvery: UInt64 = 10_000)
            async throws
        {
            self.id = id
            let box = ReceiverBox()
            transport = try ClusterTransport(
                configuration: pki.configuration(id: id, port: port), receiver: box,
                logger: RecordingLogHandler.logger("raft-\(directory)-\(id)"))
            let storage = try DurableLogStorage.open(directory: directory, bootstrap: ConfState(voters: voters))
            node = try Node(
                options: Node.Options(
                    // Small snapshot chunks: a snapshot takes many, one in flight at a time.
                    raft: RaftConfig(id: id, electionTimeoutTicks: 10, heartbeatIntervalTicks: 1, snapshotChunkBytes: 64 << 10),
                    tickInterval: .milliseconds(20), snapshotEveryAppliedEntries: snapshotEvery),
                storage: storage, machine: CommittedStrings(), transport: transport)
            box.target.withLock { $0 = node }
        }
    }

    static func leader(of members: [Member]) async throws -> Member {
        var found: Member?
        try await eventually("one leader all agree on") {
            var views: Set<NodeID> = []
            for member in members { views.insert(await member.node.leader) }
            guard views.count == 1, let leader = views.first, leader != 0 else { return false }
            found = members.first { $0.id == leader }
            return found != nil
        }
        return try #require(found)
    }

    @Test("three nodes elect a leader and commit over mutual TLS; after the leader is stopped the other two go on")
    func threeNodesCommitOverTheNetwork() async throws {
        let pki = try TestPKI()
        let root = try SecurityTemporaryDirectory()
        let ids: [NodeID] = [1, 2, 3]
        var members: [Member] = []
        for id in ids {
            members.append(try await Member(id: id, pki: pki, directory: root.appending("node-\(id)"), voters: Set(ids)))
        }
        var ports: [NodeID: Int] = [:]
        for member in members { ports[member.id] = try await member.transport.start() }
        let peers = ids.map { ClusterPeer(id: $0, name: "node-\($0)", host: "127.0.0.1", port: ports[$0]!) }
        for member in members {
            member.transport.setPeers(peers)
            await member.node.start()
        }
        let leader = try await Self.leader(of: members)
        for value in 1...50 { _ = try await leader.node.propose(Array("entry \(value)".utf8)) }
        let expected = (1...50).map { "entry \($0)" }
        for member in members {
            try await eventually("node \(member.id) applied 50") {
                await member.node.withStateMachine { $0.items } == expected
            }
        }
        // The leader goes away; the two left elect one of themselves and commit.
        await leader.node.stop()
        await leader.transport.shutdown()
        let rest = members.filter { $0.id != leader.id }
        let next = try await Self.leader(of: rest)
        #expect(next.id != leader.id)
        _ = try await next.node.propose(Array("after".utf8))
        for member in rest {
            try await eventually("node \(member.id) applied the entry after failover") {
                await member.node.withStateMachine { $0.items.last } == "after"
            }
        }
        for member in rest {
            await member.node.stop()
            await member.transport.shutdown()
            #expect(member.transport.statistics.connectionsRefused == 0)
        }
    }

    @Test("a node that was down while the log was compacted catches up through a snapshot sent over the transport")
    func laggingNodeCatchesUpThroughASnapshot() async throws {
        let pki = try TestPKI()
        let root = try SecurityTemporaryDirectory()
        let ids: [NodeID] = [1, 2, 3]
        var ports: [NodeID: Int] = [:]
        for id in ids { ports[id] = try unusedPort() }
        let peers = ids.map { ClusterPeer(id: $0, name: "node-\($0)", host: "127.0.0.1", port: ports[$0]!) }
        func start(_ id: NodeID) async throws -> Member {
            let member = try await Member(
                id: id, pki: pki, directory: root.appending("node-\(id)"), voters: Set(ids), port: ports[id]!, snapshotEvery: 50)
            try await member.transport.start()
            member.transport.setPeers(peers)
            await member.node.start()
            return member
        }
        var members: [NodeID: Member] = [:]
        for id in ids { members[id] = try await start(id) }
        var leader = try await Self.leader(of: Array(members.values))
        let lagging = try #require(ids.first { $0 != leader.id })
        await members[lagging]!.node.stop()
        await members[lagging]!.transport.shutdown()
        members[lagging] = nil
        // Enough entries (with a large value each) that the log is compacted past what the
        // lagging node has, several times over.
        let filler = String(repeating: "x", count: 2_000)
        for value in 1...300 {
            do {
                _ = try await leader.node.propose(Array("entry \(value) \(filler)".utf8))
            } catch {
                leader = try await Self.leader(of: Array(members.values))
                _ = try await leader.node.propose(Array("entry \(value) \(filler)".utf8))
            }
        }
        let compactedTo = await leader.node.status.firstIndex
        #expect(compactedTo > 100, "the leader's log starts at \(compactedTo): no compaction to catch up across")
        let back = try await start(lagging)
        members[lagging] = back
        try await eventually("the lagging node has every entry", timeout: .seconds(30)) {
            await back.node.withStateMachine { $0.items.count } == 300
        }
        let items = await back.node.withStateMachine { $0.items }
        #expect(items.last == "entry 300 \(filler)")
        for member in members.values {
            await member.node.stop()
            await member.transport.shutdown()
        }
    }
}
