import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Samples of every process that matters, at one moment.
struct ClusterSample {
    var at = ContinuousClock.now
    var servers: [Int: ProcessSample] = [:]
    var bench: ProcessSample?
    var machine = MachineSample.take()

    static func take(_ cluster: ServerCluster) -> ClusterSample {
        var sample = ClusterSample()
        for server in cluster.servers {
            sample.servers[server.number] = ProcessSample.take(server.pid)
        }
        sample.bench = ProcessSample.take(getpid())
        sample.machine = MachineSample.take()
        return sample
    }
}

/// The Raft position at one moment, as the leader's /metrics and its replica's state index say.
struct RaftPosition {
    var metrics: ServerCluster.RaftMetrics
    var stateIndex: UInt64

    static func take(_ cluster: ServerCluster, _ server: ServerProcess) async throws -> RaftPosition {
        RaftPosition(metrics: try await cluster.raftMetrics(server), stateIndex: try await cluster.stateIndex(server))
    }
}

/// One measured stretch of time and what it cost.
struct Window {
    var name: String
    var leader: ServerProcess
    var start: ClusterSample
    var end: ClusterSample
    var before: RaftPosition
    var after: RaftPosition
    var leaderAfter: ServerProcess?
    var heartbeats: HeartbeatStats?
    /// Watch answers during the window (when the clients hold watches): with nothing
    /// changing, none but the "unchanged" ones every 30 s per client.
    var watchAnswers: (answers: Int, changed: Int, failed: Int)?
    var events: [String] = []

    var elapsed: Double { seconds(end.at - start.at) }
    var committedEntries: Double { after.metrics.commit - before.metrics.commit }
    var stateChanges: UInt64 { after.stateIndex &- before.stateIndex }
    var entriesPerSecond: Double { committedEntries / elapsed }

    func cpuPercent(_ number: Int) -> Double {
        guard let a = start.servers[number], let b = end.servers[number] else { return .nan }
        return b.cpuPercent(since: a)
    }

    var leaderCPU: Double { cpuPercent(leader.number) }
    var leaderEnd: ProcessSample? { end.servers[leader.number] }
    var benchCPU: Double {
        guard let a = start.bench, let b = end.bench else { return .nan }
        return b.cpuPercent(since: a)
    }

    /// Measures `duration` from now; the leader is asked for first and after.
    static func measure(
        _ name: String, duration: Duration, cluster: ServerCluster, fleet: Fleet?
    ) async throws -> Window {
        let leader = try await cluster.leader()
        // /metrics is refreshed once a second: wait for a fresh value on both sides.
        try await Task.sleep(for: .milliseconds(1_100))
        let before = try await RaftPosition.take(cluster, leader)
        _ = fleet?.takeHeartbeatStats()
        let watchesBefore = fleet?.watches
        let start = ClusterSample.take(cluster)
        try await Task.sleep(for: duration)
        let end = ClusterSample.take(cluster)
        let heartbeats = fleet?.takeHeartbeatStats()
        let watchesAfter = fleet?.watches
        try await Task.sleep(for: .milliseconds(1_100))
        let after = try await RaftPosition.take(cluster, leader)
        var window = Window(
            name: name, leader: leader, start: start, end: end, before: before, after: after, leaderAfter: try? await cluster.leader(),
            heartbeats: heartbeats)
        if let a = watchesBefore, let b = watchesAfter, b.answers > 0 {
            window.watchAnswers = (b.answers - a.answers, b.changed - a.changed, b.failed - a.failed)
        }
        if window.committedEntries > 0 || window.stateChanges > 0 {
            window.events = try await Self.events(after: before.stateIndex, on: leader)
        }
        return window
    }

    /// The events committed after `index`, counted by kind, with an example of each.
    static func events(after index: UInt64, on server: ServerProcess) async throws -> [String] {
        let list = try await UnixHTTP.get(server.socket, "/v1/events?after=\(index)").json() as? [[String: Any]] ?? []
        var byKind: [String: (count: Int, example: String)] = [:]
        for event in list {
            let kind = event["kind"] as? String ?? "?"
            let example = "index \(event["index"] ?? "?"): \(event["node"] as? String ?? "") \(event["message"] as? String ?? "")"
            if let entry = byKind[kind] {
                byKind[kind] = (entry.count + 1, entry.example)
            } else {
                byKind[kind] = (1, example)
            }
        }
        return byKind.sorted { $0.key < $1.key }.map { "\($0.value.count)x \($0.key) (e.g. \($0.value.example))" }
    }

    func report(cluster: ServerCluster) {
        print("")
        print("== \(name): \(format(elapsed, 1)) s")
        print(padded("  leader:") + "\(leader.name) (pid \(leader.pid)) at the start"
            + (leaderAfter.map { $0 === leader ? ", \($0.name) at the end" : ", \($0.name) at the end: the leader changed" } ?? ", none known at the end"))
        print(padded("  Raft entries committed:") + "\(Int(committedEntries)) (\(format(entriesPerSecond, 3))/s), "
            + "term \(Int(before.metrics.term)) -> \(Int(after.metrics.term)), commit index \(Int(before.metrics.commit)) -> \(Int(after.metrics.commit))")
        print(padded("  state changes (X-Flotilla-Index):") + "\(stateChanges) (\(before.stateIndex) -> \(after.stateIndex))")
        let elections = Int(after.metrics.term - before.metrics.term)
        if elections > 0 {
            print(padded("  elections:") + "\(elections) new terms in \(format(elapsed, 0)) s; each new leader commits an empty entry"
                + (stateChanges == 0 ? " (the only entries here: nothing in the state changed)" : ""))
        }
        for event in events.prefix(10) { print("    " + event) }
        if let sample = leaderEnd {
            print(padded("  leader CPU:") + "\(format(leaderCPU, 2)) % of one core")
            print(padded("  leader memory:") + "RSS \(mebibytes(sample.rssKiB)), peak \(mebibytes(sample.peakRSSKiB)), \(sample.threads) threads")
        }
        for server in cluster.servers where server !== leader {
            guard let sample = end.servers[server.number] else { continue }
            print(padded("  follower \(server.name) CPU / RSS:") + "\(format(cpuPercent(server.number), 2)) %   \(mebibytes(sample.rssKiB))")
        }
        print(padded("  this benchmark (the clients) CPU:") + "\(format(benchCPU, 1)) % of one core"
            + (end.bench.map { ", RSS \(mebibytes($0.rssKiB))" } ?? ""))
        print(padded("  machine busy (\(ProcessInfo.processInfo.activeProcessorCount) cores):") + "\(format(end.machine.busyPercent(since: start.machine), 1)) %")
        if let watchAnswers {
            print(padded("  watch answers:") + "\(watchAnswers.answers) (\(watchAnswers.changed) with a new assignment, \(watchAnswers.failed) failed)")
        }
        if let heartbeats {
            print(padded("  heartbeats:") + heartbeats.summary)
            if heartbeats.latency.count > 0 {
                print(padded("  heartbeat call latency:") + heartbeats.latency.summary)
                print(padded("  heartbeats answered per second:") + format(Double(heartbeats.latency.count) / elapsed, 1))
            }
        }
    }
}
