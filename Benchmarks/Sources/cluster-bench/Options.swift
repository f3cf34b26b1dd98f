#if canImport(Glibc)
import Glibc
#endif

/// The command line: a mode and its knobs. Every flag also reads an environment variable
/// (`CLUSTER_BENCH_` + the flag in capitals, dashes as underscores), the flag winning.
struct BenchOptions {
    enum Mode: String {
        /// Issue 13's first figure: heartbeats of many clients, and what they cost the leader.
        case liveness
        /// Issue 13's second figure: instances placed per second through the real cluster.
        case scheduling
        /// The scheduler alone, in this process, on the same state: where the time goes.
        case scheduler
    }

    /// Which server a simulated client sends its heartbeats (and registration) to.
    enum Target: String {
        /// Client i calls server i mod 3: a third reach the leader directly, the rest are
        /// passed on by a follower.
        case spread
        /// Every client calls the leader.
        case leader
        /// Every client calls the first server the join listed, as a real client agent does
        /// until that server stops answering (ServerFollower.callServer).
        case first
    }

    var mode: Mode = .liveness
    var clients = 1_000
    var heartbeatInterval: Duration = .seconds(1)
    var target: Target = .spread
    /// Liveness: warm-up with heartbeats before measuring, the measured window, the window with
    /// heartbeats paused (kept under the 15 s node-down timeout), and the idle-cluster window
    /// before any client joins.
    var warmup: Duration = .seconds(10)
    var window: Duration = .seconds(60)
    var pausedWindow: Duration = .seconds(10)
    var idleWindow: Duration = .seconds(10)
    /// Scheduling: instances in all, at most this many replicas per application (the manifest's
    /// limit is 10,000), how long to wait for every one to be placed, and the window after that
    /// in which the leader's steady-state cost with every instance placed is measured.
    var instances = 100_000
    var replicasPerApplication = 10_000
    var placementTimeout: Duration = .seconds(1_800)
    var steadyWindow: Duration = .seconds(30)
    /// Apply the applications one at a time, each after the previous one is fully placed,
    /// rather than all at once.
    var oneApplicationAtATime = false
    /// Also keep each client's blocking watch of its assignment open, as a real client does.
    var watch = false
    /// How many clients join at once (joins of the same moment compete for member ids).
    var joinConcurrency = 8
    var agentd = BenchOptions.defaultAgentd
    var baseDirectory = "/tmp"
    var keepDirectory = false

    /// The release agentd of the repository this file is in: `<repo>/.build-release/release/agentd`.
    static var defaultAgentd: String {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        parts.removeLast(4)  // Benchmarks/Sources/cluster-bench/Options.swift
        return parts.joined(separator: "/") + "/.build-release/release/agentd"
    }

    static let usage = """
        usage: cluster-bench liveness|scheduling|scheduler [options]
          --clients N                 simulated client agents (default 1000)
          --heartbeat-interval S      seconds between a client's heartbeats (default 1)
          --target spread|leader|first  which server clients call (default spread)
          --warmup S --window S --paused-window S --idle-window S   liveness windows (10, 60, 10, 10)
          --instances N               scheduling: instances in all (default 100000)
          --replicas-per-application N  (default 10000, the manifest's maximum)
          --one-at-a-time             apply the next application once the previous is placed
          --placement-timeout S       (default 1800)
          --steady-window S           leader cost once all is placed (default 30)
          --watch                     clients also hold blocking watches of their assignment
          --join-concurrency N        (default 8)
          --agentd PATH               (default <repo>/.build-release/release/agentd)
          --directory DIR             where the servers' state goes (default /tmp)
          --keep                      keep the state directory (logs) afterwards
        Every flag may also be given as CLUSTER_BENCH_<FLAG> in the environment.
        """

    static func parse(_ arguments: [String]) throws -> BenchOptions {
        var options = BenchOptions()
        var values: [String: String] = [:]
        var flags: Set<String> = []
        var position = 0
        var modeText = environment("MODE")
        while position < arguments.count {
            let argument = arguments[position]
            position += 1
            if !argument.hasPrefix("--") {
                modeText = argument
                continue
            }
            let name = String(argument.dropFirst(2))
            if ["one-at-a-time", "watch", "keep", "help"].contains(name) {
                flags.insert(name)
                continue
            }
            guard position < arguments.count else { throw UsageError("\(argument) needs a value") }
            values[name] = arguments[position]
            position += 1
        }
        if flags.contains("help") { throw UsageError("") }
        func value(_ name: String) -> String? {
            values[name] ?? environment(name.uppercased().replacingDashes())
        }
        func number(_ name: String) throws -> Int? {
            guard let text = value(name) else { return nil }
            guard let number = Int(text), number >= 0 else { throw UsageError("--\(name) \(text): not a whole number") }
            return number
        }
        func seconds(_ name: String) throws -> Duration? {
            guard let text = value(name) else { return nil }
            guard let number = Double(text), number >= 0 else { throw UsageError("--\(name) \(text): not a number of seconds") }
            return .milliseconds(Int64(number * 1000))
        }
        func flag(_ name: String) -> Bool {
            flags.contains(name) || ["1", "true", "yes"].contains(environment(name.uppercased().replacingDashes()) ?? "")
        }
        guard let modeText, let mode = Mode(rawValue: modeText) else { throw UsageError("name a mode: liveness, scheduling or scheduler") }
        options.mode = mode
        if let clients = try number("clients") { options.clients = max(1, clients) }
        if let interval = try seconds("heartbeat-interval") { options.heartbeatInterval = interval }
        if let text = value("target") {
            guard let target = Target(rawValue: text) else { throw UsageError("--target \(text): spread, leader or first") }
            options.target = target
        }
        if let warmup = try seconds("warmup") { options.warmup = warmup }
        if let window = try seconds("window") { options.window = window }
        if let paused = try seconds("paused-window") { options.pausedWindow = paused }
        if let idle = try seconds("idle-window") { options.idleWindow = idle }
        if let instances = try number("instances") { options.instances = instances }
        if let replicas = try number("replicas-per-application") { options.replicasPerApplication = min(10_000, max(1, replicas)) }
        if let timeout = try seconds("placement-timeout") { options.placementTimeout = timeout }
        if let steady = try seconds("steady-window") { options.steadyWindow = steady }
        if let concurrency = try number("join-concurrency") { options.joinConcurrency = max(1, concurrency) }
        if let agentd = value("agentd") { options.agentd = agentd }
        if let directory = value("directory") { options.baseDirectory = directory }
        options.oneApplicationAtATime = flag("one-at-a-time")
        options.watch = flag("watch")
        options.keepDirectory = flag("keep")
        return options
    }

    private static func environment(_ name: String) -> String? {
        getenv("CLUSTER_BENCH_" + name).map { String(cString: $0) }
    }
}

struct UsageError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

extension String {
    fileprivate func replacingDashes() -> String {
        String(map { $0 == "-" ? "_" : $0 })
    }
}
