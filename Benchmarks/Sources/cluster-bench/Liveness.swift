import Cluster
import Foundation

/// Issue 13's first figure: N clients heartbeating every second, and what it costs. Three
/// windows: the idle cluster before any client joins; the clients heartbeating; the same
/// clients connected with their heartbeats paused (shorter than the node-down timeout, so
/// that nothing goes down).
enum LivenessRun {
    static func run(_ options: BenchOptions, cluster: ServerCluster) async throws {
        let idle = try await Window.measure("idle cluster: 3 servers, no clients", duration: options.idleWindow, cluster: cluster, fleet: nil)
        idle.report(cluster: cluster)

        let fleet = try await Fleet.join(
            count: options.clients, host: "127.0.0.1", port: cluster.servers[0].port, token: try JoinToken(parsing: cluster.token),
            concurrency: options.joinConcurrency)
        try await fleet.registerAll(cpuMillicores: 2_000, memoryBytes: 4 << 30)
        let leader = try await cluster.leader()
        fleet.aim(options.target, leaderID: leader.memberID)
        fleet.startHeartbeats(interval: options.heartbeatInterval)
        if options.watch { fleet.startWatches() }
        log("heartbeats every \(options.heartbeatInterval) from \(options.clients) clients (target: \(options.target)); warming up for \(options.warmup)")
        try await Task.sleep(for: options.warmup)

        let beating = try await Window.measure(
            "\(options.clients) clients heartbeating every \(options.heartbeatInterval) (target \(options.target))",
            duration: options.window, cluster: cluster, fleet: fleet)
        beating.report(cluster: cluster)

        fleet.setPaused(true)
        let paused = try await Window.measure(
            "\(options.clients) clients connected, heartbeats paused", duration: options.pausedWindow, cluster: cluster, fleet: fleet)
        fleet.setPaused(false)
        paused.report(cluster: cluster)

        print("")
        print("== summary (liveness, \(options.clients) clients, heartbeats every \(options.heartbeatInterval), target \(options.target))")
        let entries = beating.entriesPerSecond
        print(padded("  Raft entries/s caused by heartbeats:") + "\(format(entries, 3))   (goal: 0 while nothing changes)"
            + (beating.committedEntries == 0 ? "   met" : "   NOT met: \(Int(beating.committedEntries)) entries in \(format(beating.elapsed, 0)) s"))
        let idleCPU = idle.leaderCPU
        let pausedCPU = paused.leaderCPU
        print(padded("  leader CPU, heartbeating:") + "\(format(beating.leaderCPU, 2)) % of one core")
        print(padded("  leader CPU, clients connected, paused:") + "\(format(pausedCPU, 2)) %")
        print(padded("  leader CPU, idle cluster, no clients:") + "\(format(idleCPU, 2)) %")
        let perBeat = (beating.leaderCPU - pausedCPU) / 100 / max(1, Double(beating.heartbeats?.latency.count ?? 0) / beating.elapsed)
        print(padded("  leader CPU per heartbeat:") + "\(format(perBeat * 1e6, 1)) us (heartbeating minus paused, per answered beat/s)")
        if let sample = beating.leaderEnd, let idleSample = idle.leaderEnd {
            print(padded("  leader RSS:") + "\(mebibytes(sample.rssKiB)) with \(options.clients) clients (peak \(mebibytes(sample.peakRSSKiB))), "
                + "\(mebibytes(idleSample.rssKiB)) idle before they joined")
        }
        if let heartbeats = beating.heartbeats {
            print(padded("  heartbeat latency:") + heartbeats.latency.summary)
            print(padded("  heartbeats failed / unknown:") + "\(heartbeats.failed) / \(heartbeats.unknown)")
        }
        if paused.committedEntries > 0 {
            print(padded("  entries while paused:") + "\(Int(paused.committedEntries))")
        }
        await fleet.stop()
    }
}
