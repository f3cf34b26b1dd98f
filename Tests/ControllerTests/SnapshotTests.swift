@testable import Controller
import Manifest
import Testing
import TestSupport

@Suite("Snapshots, determinism and the log format")
struct SnapshotTests {
    /// Applies `count` random commands to `state`, checking the invariants after each.
    static func run(_ count: Int, on state: inout ClusterState, _ workload: inout RandomWorkload, from index: inout UInt64, seed: UInt64) -> [CommandResult] {
        var results: [CommandResult] = []
        for _ in 0..<count {
            index += 1
            let command = workload.command(for: state)
            let time = Timestamp(unixMilliseconds: 1_700_000_000_000 + Int64(index) * 1000)
            results.append(state.apply(command, at: index, time: time))
            checkInvariants(state, "seed \(seed), index \(index), after \(command)")
        }
        return results
    }

    @Test(.cpuBound, arguments: seeds(32))
    func aRestoredSnapshotIsTheSameStateAndStaysTheSame(seed: UInt64) throws {
        var workload = RandomWorkload(seed: seed)
        var state = ClusterState()
        var index: UInt64 = 0
        _ = Self.run(150, on: &state, &workload, from: &index, seed: seed)
        let bytes = state.snapshot()
        var restored = try ClusterState.restore(from: bytes)
        #expect(restored == state, "seed \(seed): the restored state differs")
        #expect(restored.snapshot() == bytes, "seed \(seed): the restored state encodes differently")
        // Both go on with the same entries; they must not drift apart.
        var copy = workload
        var restoredIndex = index
        let original = Self.run(150, on: &state, &workload, from: &index, seed: seed)
        let replayed = Self.run(150, on: &restored, &copy, from: &restoredIndex, seed: seed)
        #expect(original == replayed, "seed \(seed): results differ after restore")
        #expect(restored == state, "seed \(seed): the states drifted apart after restore")
    }

    @Test(.cpuBound) func theWorkloadReachesEveryKindOfOutcome() throws {
        var workload = RandomWorkload(seed: 99)
        var state = ClusterState()
        var index: UInt64 = 0
        let results = Self.run(600, on: &state, &workload, from: &index, seed: 99)
        var codes = Set<String>()
        var placed = 0
        var rejectedPlacements = 0
        for result in results {
            if let error = result.error { codes.insert(error.code) }
            if case .planCommitted(let outcome) = result {
                placed += outcome.placed.count
                rejectedPlacements += outcome.rejected.count
            }
        }
        // A random test that never reaches the interesting cases proves nothing.
        #expect(codes.isSuperset(of: ["invalid_manifest", "revision_conflict", "application_not_found", "service_not_found", "stale_heartbeat", "node_not_found"]), "\(codes)")
        #expect(placed > 50 && rejectedPlacements > 0, "placed \(placed), rejected \(rejectedPlacements)")
        #expect(state.instances.values.contains { $0.status == .lost } || results.contains { $0 == .nodeUpdated(name: "n0", status: .down) })
        #expect(codes.contains("rollout_state") && results.contains { if case .rolloutControlled = $0 { true } else { false } }, "\(codes)")
    }

    @Test(.cpuBound) func replicasApplyingTheSameEntriesAgreeByteForByte() throws {
        for seed in [3, 17, 2024] as [UInt64] {
            var workload = RandomWorkload(seed: seed)
            var leader = ClusterState()
            var entries: [[UInt8]] = []
            for index in 1...200 as ClosedRange<UInt64> {
                let entry = ControllerEntry(command: workload.command(for: leader), time: Timestamp(unixMilliseconds: Int64(index) * 1000))
                entries.append(entry.encoded())
                _ = leader.apply(entry: entries.last ?? [], at: index)
            }
            var follower = ClusterState()
            for (offset, entry) in entries.enumerated() { _ = follower.apply(entry: entry, at: UInt64(offset + 1)) }
            #expect(follower.snapshot() == leader.snapshot(), "seed \(seed)")
        }
    }

    @Test func everyCommandSurvivesItsLogEncoding() throws {
        let plan = Plan(
            evaluated: [ServiceKey("web", "web")], stops: [InstanceStop(id: "web.web.3-9", reason: "scaled down to 3")],
            placements: [
                InstancePlacement(
                    service: ServiceKey("web", "web"), index: 1, revision: 4, node: "n1",
                    ports: [AssignedPort(name: "http", number: 20_123), AssignedPort(name: "dns", number: 53, protocol: .udp)], replaces: ["web.web.1-2"],
                    reason: "replaces web.web.1-2")
            ],
            unplaced: [UnplacedInstances(service: ServiceKey("web", "web"), count: 2, reason: "insufficient memory on all 3 nodes")],
            rollouts: [
                RolloutUpdate(application: "web", startedIndex: 7, change: .progressed(updated: 2)),
                RolloutUpdate(application: "web", startedIndex: 7, change: .succeeded),
                RolloutUpdate(application: "web", startedIndex: 7, change: .succeeded, replicas: ["web": 3, "api": 0]),
                RolloutUpdate(application: "web", startedIndex: 7, change: .failed(reason: "web[1] failed")),
            ])
        let commands: [ControllerCommand] = [
            .applyApplication(manifestJSON: "{\"name\": \"web\"}", expectedRevision: 3),
            .applyApplication(manifestJSON: "{}", expectedRevision: nil),
            .deleteApplication(name: "web", expectedRevision: nil),
            .scaleService(ServiceKey("web", "api"), replicas: 7, expectedRevision: 2),
            .restartService(ServiceKey("web", "api")),
            .registerNode(makeNode("n1", labels: ["zone": "eu-1"])),
            .nodeHeartbeat(node: "n1"),
            .markNodeDown(node: "n1", lastHeartbeatSeen: Timestamp(unixMilliseconds: 42)),
            .markNodeDown(node: "n1", lastHeartbeatSeen: nil),
            .setNodeDraining(node: "n1", draining: true),
            .commitPlan(plan),
            .controlRollout(application: "web", action: .pause),
            .controlRollout(application: "web", action: .resume),
            .controlRollout(application: "web", action: .undo(to: nil)),
            .controlRollout(application: "web", action: .undo(to: 3)),
            .reportInstanceStatus(
                node: "n1",
                reports: [
                    InstanceStatusReport(id: "web.web.1-2", status: .failed, exit: ExitInfo(code: 1, signal: nil, oomKilled: true), message: "OOM"),
                    InstanceStatusReport(id: "web.web.0-1", status: .healthy),
                ]),
        ]
        for command in commands {
            let entry = ControllerEntry(command: command, time: Timestamp(unixMilliseconds: 1234))
            let decoded = try ControllerEntry.decode(entry.encoded())
            #expect(decoded == entry)
            #expect(entry.encoded() == decoded.encoded())
        }
        // The format names the command, so that it can be read without this code.
        let bytes = ControllerEntry(command: .nodeHeartbeat(node: "n1"), time: Timestamp(unixMilliseconds: 5)).encoded()
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"command":{"node":"n1","type":"nodeHeartbeat"},"formatVersion":2,"time":5}"#)
    }

    @Test func entriesThatDoNotDecodeAreRefusedWithoutChangingTheState() throws {
        var cluster = TestCluster(nodes: [makeNode("a")])
        let before = cluster.state
        for garbage in ["", "{}", "{\"formatVersion\": 1, \"time\": 1, \"command\": {\"type\": \"explode\"}}", "\u{0}\u{1}"] {
            #expect(cluster.state.apply(entry: Array(garbage.utf8), at: 99).error?.code == "undecodable_entry")
        }
        let future = #"{"formatVersion": 3, "time": 1, "command": {"type": "nodeHeartbeat", "node": "a"}}"#
        #expect(cluster.state.apply(entry: Array(future.utf8), at: 99).error?.code == "undecodable_entry")
        #expect(cluster.state == before)
        #expect(throws: ControllerError.self) { try ClusterState.restore(from: Array("{\"formatVersion\": 1}".utf8)) }
    }

    @Test func anEmptyStateRoundTrips() throws {
        let empty = ClusterState()
        #expect(try ClusterState.restore(from: empty.snapshot()) == empty)
    }
}
