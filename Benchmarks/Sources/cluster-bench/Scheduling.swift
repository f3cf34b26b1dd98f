import Cluster
import Controller
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Issue 13's second figure: instances placed per second, planned by the leader and
/// committed through the 3 servers, onto simulated nodes that register and keep heartbeating.
enum SchedulingRun {
    /// Every simulated instance reserves this much cpu; nodes are sized from it.
    static let cpuMillicoresPerInstance = 10

    struct Application {
        var name: String
        var replicas: Int
        var json: String
    }

    /// Applications of one service each, `replicasPerApplication` replicas at most, kept off the
    /// real servers' own nodes by a label only simulated nodes carry. Nothing will run: the
    /// nodes are simulated; the command and the host rootfs only have to pass validation.
    static func applications(_ options: BenchOptions) -> [Application] {
        var left = options.instances
        var result: [Application] = []
        while left > 0 {
            let replicas = min(left, options.replicasPerApplication)
            let name = String(format: "cbench-%03d", result.count)
            let json = """
                {"name": "\(name)", "description": "cluster-bench: simulated instances", "services": [{"name": "sleeper",
                  "command": ["/bin/sleep", "infinity"], "resources": {"cpu": \(Double(cpuMillicoresPerInstance) / 1000), "memory": "4Mi", "pids": 4},
                  "replicas": \(replicas),
                  "placement": {"constraints": [{"attribute": "label.\(SimulatedClient.label.0)", "operator": "=", "value": "\(SimulatedClient.label.1)"}]}}]}
                """
            result.append(Application(name: name, replicas: replicas, json: json))
            left -= replicas
        }
        return result
    }

    /// What one answer of `GET /v1/applications` says about the benchmark's applications.
    struct Progress {
        var at: ContinuousClock.Instant
        var index: UInt64
        /// Instances with a node, wanted running (every status).
        var placed: Int
        var byStatus: [String: Int]
        var unplaced: [String]
        var term: Double
    }

    static func progress(from response: UnixHTTP.Response, term: Double) throws -> Progress {
        let list = try response.json() as? [[String: Any]] ?? []
        var placed = 0
        var byStatus: [String: Int] = [:]
        var unplaced: [String] = []
        for application in list where (application["name"] as? String)?.hasPrefix("cbench-") == true {
            for service in application["services"] as? [[String: Any]] ?? [] {
                for (status, count) in service["counts"] as? [String: Any] ?? [:] {
                    let number = (count as? NSNumber)?.intValue ?? 0
                    placed += number
                    byStatus[status, default: 0] += number
                }
                unplaced += (service["unplaced"] as? [String] ?? []).map { "\(application["name"] ?? ""): \($0)" }
            }
        }
        return Progress(
            at: .now, index: UInt64(response.headers["x-flotilla-index"] ?? "") ?? 0, placed: placed, byStatus: byStatus, unplaced: unplaced,
            term: term)
    }

    static func run(_ options: BenchOptions, cluster: ServerCluster) async throws {
        let applications = applications(options)
        let perNode = (options.instances + options.clients - 1) / options.clients
        // Room for a fifth more than an even share, so that placement never runs out of room.
        let capacity = max(1_000, (perNode * 6 / 5 + 1) * cpuMillicoresPerInstance)
        let fleet = try await Fleet.join(
            count: options.clients, host: "127.0.0.1", port: cluster.servers[0].port, token: try JoinToken(parsing: cluster.token),
            concurrency: options.joinConcurrency)
        try await fleet.registerAll(cpuMillicores: capacity, memoryBytes: 64 << 30)
        var leader = try await cluster.leader()
        fleet.aim(options.target, leaderID: leader.memberID)
        fleet.startHeartbeats(interval: options.heartbeatInterval)
        if options.watch { fleet.startWatches() }
        log("\(options.clients) nodes of \(capacity) millicores heartbeating every \(options.heartbeatInterval) (target \(options.target))"
            + (options.watch ? ", each holding a blocking watch" : "") + "; settling for 5 s")
        try await Task.sleep(for: .seconds(5))

        leader = try await cluster.leader()
        let poller = cluster.follower(besides: leader)
        try await Task.sleep(for: .milliseconds(1_100))
        let before = try await RaftPosition.take(cluster, leader)
        let raftBytesBefore = directoryBytes(leader.stateDirectory + "/raft")
        _ = fleet.takeHeartbeatStats()
        let startSample = ClusterSample.take(cluster)
        log("leader \(leader.name), polling progress on \(poller.name); applying \(applications.count) applications, "
            + "\(options.instances) instances (\(perNode) per node)" + (options.oneApplicationAtATime ? ", one at a time" : ""))

        let clock = ContinuousClock()
        let start = clock.now
        let deadline = start + options.placementTimeout
        var timeline: [Progress] = []
        var index: UInt64 = 0
        var timedOut = false
        var applied = 0
        var wanted = 0
        var lastReport = start
        var peakLeaderRSS = 0
        var putFailures: [String] = []
        let logOffsets = cluster.servers.map { ServerLog.size($0.logPath) }
        for (position, application) in applications.enumerated() {
            try await put(application, cluster: cluster, preferring: leader, failures: &putFailures)
            applied += 1
            wanted += application.replicas
            guard options.oneApplicationAtATime || position == applications.count - 1 else { continue }
            log("applied \(applied) of \(applications.count) (\(wanted) instances wanted) in \(format(seconds(clock.now - start), 2)) s")
            // Wait for this much to be placed, watching the follower's replica (what it has
            // applied is committed).
            while true {
                let answer: UnixHTTP.Response
                do {
                    answer = try await UnixHTTP.get(poller.socket, "/v1/applications?index=\(index)&wait=2s", timeout: .seconds(120))
                } catch {
                    log("polling \(poller.name): \(error)")
                    try await Task.sleep(for: .seconds(1))
                    continue
                }
                let term = (try? await cluster.raftMetrics(poller).term) ?? 0
                let now = try progress(from: answer, term: term)
                index = now.index
                if let sample = ProcessSample.take(leader.pid) { peakLeaderRSS = max(peakLeaderRSS, sample.rssKiB) }
                if timeline.last.map({ $0.placed != now.placed || $0.term != now.term }) ?? true { timeline.append(now) }
                if now.placed >= wanted { break }
                if clock.now - lastReport > .seconds(10) {
                    lastReport = clock.now
                    log("  \(now.placed) placed, index \(now.index), term \(Int(term))" + (now.unplaced.isEmpty ? "" : ", unplaced: \(now.unplaced.prefix(2))"))
                }
                if clock.now > deadline {
                    timedOut = true
                    break
                }
            }
            if timedOut { break }
        }
        let elapsed = clock.now - start
        let endSample = ClusterSample.take(cluster)
        let heartbeats = fleet.takeHeartbeatStats()
        try await Task.sleep(for: .milliseconds(1_100))
        let after = try await RaftPosition.take(cluster, leader)
        let raftBytesAfter = directoryBytes(leader.stateDirectory + "/raft")
        let leaderAfter = try? await cluster.leader()
        let last = timeline.last

        print("")
        print("== placement: \(options.instances) instances in \(applications.count) applications over \(options.clients) simulated nodes, 3 servers")
        if timedOut { print("  TIMED OUT after \(options.placementTimeout)") }
        let placed = last?.placed ?? 0
        let rate = Double(placed) / seconds(elapsed)
        print(padded("  placed and committed:") + "\(placed) of \(wanted) in \(format(seconds(elapsed), 2)) s, from the first PUT")
        print(padded("  instances placed per second:") + "\(format(rate, 0))   (goal >= 10000/s: \(format(rate / 10_000 * 100, 1)) % of it; "
            + "Nomad C1M: 3750/s on 5 servers, ratio \(format(rate / 3_750, 2))x)")
        if let last {
            print(padded("  instances by status:") + last.byStatus.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
            if !last.unplaced.isEmpty { print(padded("  unplaced:") + last.unplaced.prefix(5).joined(separator: "; ")) }
        }
        let committed = after.metrics.commit - before.metrics.commit
        print(padded("  Raft entries committed meanwhile:") + "\(Int(committed)) (\(applications.count) applies; the rest plans and others), "
            + "state changes \(after.stateIndex &- before.stateIndex)")
        let elections = Int(after.metrics.term - before.metrics.term)
        print(padded("  term:") + "\(Int(before.metrics.term)) -> \(Int(after.metrics.term)): "
            + (elections == 0 ? "no election" : "\(elections) terms, elections while placing") + "; leader \(leader.name) at the start, "
            + (leaderAfter.map { "\($0.name) at the end" } ?? "none known at the end"))
        printTimeline(timeline, start: start)
        let leaderStart = startSample.servers[leader.number]
        if let a = leaderStart, let b = endSample.servers[leader.number] {
            print(padded("  leader CPU while placing:") + "\(format(b.cpuPercent(since: a), 1)) % of one core; RSS \(mebibytes(b.rssKiB)) at the end, "
                + "peak seen \(mebibytes(max(peakLeaderRSS, b.rssKiB))), high-water \(mebibytes(b.peakRSSKiB))")
            print(padded("  leader disk writes while placing:") + "\(format(Double(b.writeBytes - a.writeBytes) / 1_048_576, 1)) MiB (/proc/PID/io write_bytes)")
        }
        for server in cluster.servers where server !== leader {
            if let a = startSample.servers[server.number], let b = endSample.servers[server.number] {
                print(padded("  follower \(server.name) CPU / RSS:") + "\(format(b.cpuPercent(since: a), 1)) %   \(mebibytes(b.rssKiB))")
            }
        }
        if let a = startSample.bench, let b = endSample.bench {
            print(padded("  this benchmark (the clients) CPU:") + "\(format(b.cpuPercent(since: a), 1)) %")
        }
        print(padded("  machine busy (2 cores = 200 %):") + "\(format(endSample.machine.busyPercent(since: startSample.machine), 1)) % of all cores")
        print(padded("  leader's raft directory:") + "\(format(Double(raftBytesBefore) / 1_048_576, 1)) MiB -> \(format(Double(raftBytesAfter) / 1_048_576, 1)) MiB (allocated)")
        print(padded("  heartbeats while placing:") + heartbeats.summary)
        print(padded("  heartbeat latency while placing:") + heartbeats.latency.summary)
        if options.watch {
            let watches = fleet.watches
            print(padded("  watches:") + "\(watches.answers) answers, \(watches.changed) with a new assignment, \(watches.failed) failed; "
                + "instances seen by the clients: \(watches.instancesSeen.reduce(0, +))")
        }
        planSizes(timeline, applications: applications)
        if !putFailures.isEmpty {
            print("  applies refused and retried (\(putFailures.count)):")
            for failure in putFailures.prefix(5) { print("    " + failure) }
        }
        for (server, offset) in zip(cluster.servers, logOffsets) {
            let lines = ServerLog.summary(server.logPath, from: offset)
            guard !lines.isEmpty else { continue }
            print("  \(server.name)'s log while placing (warnings and worse, by message):")
            for line in lines.prefix(8) { print("    " + line) }
        }

        if !timedOut {
            let steady = try await Window.measure(
                "steady state: \(placed) instances placed, \(options.clients) clients heartbeating", duration: options.steadyWindow, cluster: cluster,
                fleet: fleet)
            steady.report(cluster: cluster)
        }
        await fleet.stop()
    }

    /// PUTs a manifest, again while the cluster answers with a passing failure (no leader, a
    /// proposal replaced by a new leader's entry, a timeout): applying the same manifest twice
    /// changes nothing, so a retry is safe. Any server takes it (a follower forwards it).
    static func put(_ application: Application, cluster: ServerCluster, preferring first: ServerProcess, failures: inout [String]) async throws {
        var target = first
        for attempt in 1...60 {
            var outcome = ""
            do {
                let response = try await UnixHTTP.request(
                    target.socket, "PUT", "/v1/applications/\(application.name)", body: Array(application.json.utf8), timeout: .seconds(120))
                if (200..<300).contains(response.status) { return }
                outcome = "\(response.status) \(response.text.prefix(300))"
                if response.status == 400 || response.status == 422 || response.status == 413 {
                    throw UsageError("PUT \(application.name) on \(target.name): \(outcome)")
                }
            } catch let error as UsageError {
                throw error
            } catch {
                outcome = "\(error)"
            }
            failures.append("PUT \(application.name) on \(target.name), attempt \(attempt): \(outcome)")
            log("PUT \(application.name) on \(target.name) failed (\(outcome.prefix(160))); again in 1 s")
            try await Task.sleep(for: .seconds(1))
            target = (try? await cluster.leader()) ?? cluster.servers[attempt % cluster.servers.count]
        }
        throw UsageError("PUT \(application.name): no success in 60 attempts")
    }

    /// Each observed change of the placed count: when, at which state index, how many more.
    static func printTimeline(_ timeline: [Progress], start: ContinuousClock.Instant) {
        print("  progress seen on a follower (time from the first PUT, state index, placed, term):")
        var previous = 0
        for point in timeline.prefix(40) {
            print("    \(format(seconds(point.at - start), 2)) s   index \(point.index)   \(point.placed) (+\(point.placed - previous))   term \(Int(point.term))")
            previous = point.placed
        }
        if timeline.count > 40 { print("    ... \(timeline.count - 40) more") }
    }

    /// How big the plan entries were: each jump of the placed count is one or more plans; the
    /// encoded size of an equivalent plan is computed here with the same types and encoder.
    static func planSizes(_ timeline: [Progress], applications: [Application]) {
        var previous = 0
        var jumps: [Int] = []
        for point in timeline {
            if point.placed > previous { jumps.append(point.placed - previous) }
            previous = point.placed
        }
        guard let largest = jumps.max() else { return }
        let bytes = PlanEncoding.entryBytes(placements: largest, applications: applications.map { ($0.name, $0.replicas) })
        print(padded("  placement jumps seen:") + "\(jumps.count), largest +\(largest): a plan entry of that many placements "
            + "encodes to \(format(Double(bytes) / 1_048_576, 2)) MiB (\(bytes / max(largest, 1)) bytes per placement)")
    }

    /// The bytes in a file tree, as allocated on disk.
    static func directoryBytes(_ path: String) -> Int64 {
        var total: Int64 = 0
        guard let walker = FileManager.default.enumerator(atPath: path) else { return 0 }
        while let name = walker.nextObject() as? String {
            var info = stat()
            if lstat(path + "/" + name, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG { total += Int64(info.st_blocks) * 512 }
        }
        return total
    }
}

/// The encoded size of plan entries like the leader's.
enum PlanEncoding {
    static func plan(placements count: Int, applications: [(name: String, replicas: Int)], nodes: Int = 1_000) -> Plan {
        var placements: [InstancePlacement] = []
        placements.reserveCapacity(count)
        var evaluated: [ServiceKey] = []
        outer: for application in applications {
            let key = ServiceKey(application.name, "sleeper")
            evaluated.append(key)
            for slot in 0..<application.replicas {
                if placements.count == count { break outer }
                placements.append(InstancePlacement(
                    service: key, index: slot, revision: 1, node: String(format: "cbench-node-%04d", placements.count % nodes), ports: [],
                    reason: "slot \(slot) has no instance"))
            }
        }
        return Plan(evaluated: evaluated, placements: placements)
    }

    static func entryBytes(placements count: Int, applications: [(name: String, replicas: Int)]) -> Int {
        ControllerEntry(command: .commitPlan(plan(placements: count, applications: applications)), time: Timestamp(unixMilliseconds: unixMilliseconds()))
            .encoded().count
    }
}
