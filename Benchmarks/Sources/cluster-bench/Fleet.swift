import Cluster
import Controller
import Foundation
import Raft
import Synchronization

/// What the heartbeats of a stretch of time came to.
struct HeartbeatStats {
    var latency = LatencySample()
    var known = 0
    var unknown = 0
    var failed = 0
    /// Beats not sent because the previous call of the same client was still waiting.
    var skipped = 0
    var errors: [String: Int] = [:]

    var sent: Int { known + unknown + failed }

    var summary: String {
        var text = "\(sent) sent: \(known) known, \(unknown) unknown, \(failed) failed, \(skipped) skipped (previous still waiting)"
        for (error, count) in errors.sorted(by: { $0.value > $1.value }).prefix(3) { text += "\n      \(count)x \(error)" }
        return text
    }
}

/// What the blocking watches saw.
struct WatchStats {
    var answers = 0
    var changed = 0
    var failed = 0
    var bytes = 0
    /// Instances in each client's latest copy.
    var instancesSeen: [Int] = []
}

/// The simulated client agents, with their heartbeat (and optional watch) loops.
final class Fleet: Sendable {
    let clients: [SimulatedClient]
    private let heartbeatStats = Mutex(HeartbeatStats())
    private let watchStats: Mutex<WatchStats>
    private let paused = Atomic<Bool>(false)
    private let tasks = Mutex<[Task<Void, Never>]>([])

    private init(clients: [SimulatedClient]) {
        self.clients = clients
        watchStats = Mutex(WatchStats(instancesSeen: [Int](repeating: 0, count: clients.count)))
    }

    /// `count` clients join through `host:port`, `concurrency` at a time.
    static func join(count: Int, host: String, port: Int, token: JoinToken, concurrency: Int) async throws -> Fleet {
        let clock = ContinuousClock()
        let start = clock.now
        let clients = try await forEach(0..<count, concurrency: concurrency) { number in
            try await SimulatedClient.join(number: number, host: host, port: port, token: token)
        }
        log("\(count) clients joined in \(format(seconds(clock.now - start), 1)) s (\(concurrency) at a time)")
        let fleet = Fleet(clients: clients.sorted { $0.number < $1.number })
        try await waitUntil("every client connected to every server", timeout: .seconds(120)) {
            fleet.clients.allSatisfy { client in client.servers.allSatisfy { client.transport.isConnected(to: $0) } }
        }
        log("every client has a mutual-TLS connection to each of the \(fleet.clients.first?.servers.count ?? 0) servers")
        return fleet
    }

    /// Registers every client's node (one Raft entry each).
    func registerAll(cpuMillicores: Int, memoryBytes: Int64, concurrency: Int = 32) async throws {
        let clock = ContinuousClock()
        let start = clock.now
        _ = try await Self.forEach(clients, concurrency: concurrency) { client in
            try await client.register(cpuMillicores: cpuMillicores, memoryBytes: memoryBytes)
        }
        log("\(clients.count) nodes registered in \(format(seconds(clock.now - start), 1)) s")
    }

    /// Points every client at a server, per `target`.
    func aim(_ target: BenchOptions.Target, leaderID: NodeID) {
        for client in clients {
            switch target {
            case .spread: client.prefer(client.servers[client.number % client.servers.count])
            case .leader: client.prefer(leaderID)
            case .first: client.prefer(client.servers.min() ?? leaderID)
            }
        }
    }

    /// Every client beats every `interval`, the clients spread evenly over the interval.
    func startHeartbeats(interval: Duration) {
        let base = ContinuousClock.now + .milliseconds(100)
        let count = clients.count
        for client in clients {
            let offset = interval * (Double(client.number) / Double(count))
            let task = Task { [self] in
                var next = base + offset
                while !Task.isCancelled {
                    do { try await Task.sleep(until: next, clock: .continuous) } catch { return }
                    if !paused.load(ordering: .relaxed) {
                        let start = ContinuousClock.now
                        do {
                            let known = try await client.heartbeat()
                            let took = ContinuousClock.now - start
                            heartbeatStats.withLock { stats in
                                stats.latency.record(took)
                                if known { stats.known += 1 } else { stats.unknown += 1 }
                            }
                        } catch {
                            let text = "\(error)".replacingOccurrences(of: "member [0-9]+", with: "member N", options: .regularExpression)
                            heartbeatStats.withLock { stats in
                                stats.failed += 1
                                stats.errors[String(text.prefix(200)), default: 0] += 1
                            }
                        }
                    }
                    next += interval
                    let now = ContinuousClock.now
                    var skipped = 0
                    while next <= now {
                        next += interval
                        skipped += 1
                    }
                    if skipped > 0 { heartbeatStats.withLock { $0.skipped += skipped } }
                }
            }
            tasks.withLock { $0.append(task) }
        }
    }

    /// Every client holds a blocking watch of its assignment, as ServerFollower.run does.
    func startWatches(wait: Duration = .seconds(30)) {
        for (position, client) in clients.enumerated() {
            let task = Task { [self] in
                var after: UInt64 = 0
                var digest: [UInt8] = []
                while !Task.isCancelled {
                    do {
                        let assignment = try await client.watch(after: after, digest: digest, wait: wait)
                        if let assignment {
                            after = assignment.index
                            digest = SimulatedClient.digest(assignment)
                        }
                        watchStats.withLock { stats in
                            stats.answers += 1
                            if let assignment {
                                stats.changed += 1
                                stats.instancesSeen[position] = assignment.instances.filter { $0.desiredState == .run }.count
                            }
                        }
                    } catch {
                        watchStats.withLock { $0.failed += 1 }
                        try? await Task.sleep(for: .milliseconds(250))
                    }
                }
            }
            tasks.withLock { $0.append(task) }
        }
    }

    func setPaused(_ value: Bool) { paused.store(value, ordering: .relaxed) }

    /// The heartbeat figures since the last call.
    func takeHeartbeatStats() -> HeartbeatStats {
        heartbeatStats.withLock { stats in
            defer { stats = HeartbeatStats() }
            return stats
        }
    }

    var watches: WatchStats { watchStats.withLock { $0 } }

    func stop() async {
        for task in tasks.withLock({ $0 }) { task.cancel() }
        for client in clients { await client.shutdown() }
    }

    /// `body` over `items`, at most `concurrency` at once; the results in completion order.
    static func forEach<Item: Sendable, Result: Sendable>(
        _ items: some Sequence<Item>, concurrency: Int, _ body: @escaping @Sendable (Item) async throws -> Result
    ) async throws -> [Result] {
        try await withThrowingTaskGroup(of: Result.self) { group in
            var results: [Result] = []
            var running = 0
            for item in items {
                if running >= concurrency {
                    if let result = try await group.next() { results.append(result) }
                    running -= 1
                }
                group.addTask { try await body(item) }
                running += 1
            }
            for try await result in group { results.append(result) }
            return results
        }
    }
}
