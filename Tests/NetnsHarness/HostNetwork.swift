import Foundation
import Glibc
import Synchronization

/// N hosts on one machine, for multi-host tests and for a developer by hand: each host is a
/// network namespace `flt<run>-h<i>` with loopback up and one veth end `eth0` at
/// `10.<x>.<y>.<i>/24`, the other end `h<i>` on a bridge `br0` that lives in a namespace of its
/// own (`flt<run>-br`). Every link is made inside those namespaces (`ip -n`, and the veth peer is
/// created straight into the host's namespace), so the root namespace's links and routes are never
/// touched and nothing of a run shows in its `ip link`.
///
/// A host runs one process at a time (`start`, `kill9`, `stop`, `restart`), such as an agentd;
/// `run` runs a one-shot command there. `cut` and `heal` take the host's bridge port down and up;
/// `impair` delays and drops its frames (see `ImpairmentRelay` for why not netem).
///
/// Cleanup: `shutdown` kills every process it started (each leads its own process group) and
/// everything else still inside its namespaces, deletes the namespaces (their veths go with them;
/// the bind mounts under /run/netns are `ip netns delete`'s to remove) and its record. It makes
/// no cgroups and no other mounts. Processes enter only the host's network namespace
/// (`nsenter --net`): `ip netns exec` would also mount a fresh /sys, which hides the cgroup
/// filesystems, and an agent there could not put its services in cgroups. A run that never got to shut down (a crash, ^C, a test killed for its time
/// limit) is removed by the next `HostNetwork`: see `sweepStale`.
///
/// Hosts are numbered from 1, so host `i` has address `.i`. Needs root.
public final class HostNetwork: Sendable {
    /// The most hosts one network can have (addresses .1 to .250 of its /24).
    public static let maximumHostCount = 250

    /// Five characters of [a-z0-9], unique among live runs; every name of the run contains it.
    public let runID: String
    /// How many hosts there are; they are numbered `1...hostCount`.
    public let hostCount: Int
    /// The first three octets of every host's address, `10.<x>.<y>`.
    public let subnetPrefix: String

    private let record: RunRecord
    private let state = Mutex(State())

    /// What runs where, and what the operations have changed, guarded by `state`.
    private struct State {
        var isShutDown = false
        /// The last command started on each host, for `restart`.
        var launches: [Int: Launch] = [:]
        /// Each host's process, while it has one.
        var processes: [Int: Process] = [:]
        /// The impairment relay of each impaired host.
        var relays: [Int: Process] = [:]
    }

    private struct Launch {
        var arguments: [String]
        var environment: [String: String]
        var logPath: String?
    }

    /// The hosts' numbers.
    public var hosts: ClosedRange<Int> { 1...hostCount }
    /// The namespace holding the bridge.
    public var bridgeNamespace: String { "flt\(runID)-br" }
    /// Every namespace of this run, the bridge's first.
    public var namespaces: [String] { [bridgeNamespace] + hosts.map { "flt\(runID)-h\($0)" } }

    /// Makes `hostCount` hosts on a bridge, after sweeping away what dead runs left
    /// (`sweepStale`). Throws `hostCountOutOfRange` for a count outside 1...`maximumHostCount`,
    /// `notRoot`, or the failed `ip` command (having removed whatever it had made).
    public init(hostCount: Int) throws {
        let allowed = 1...Self.maximumHostCount
        guard allowed.contains(hostCount) else {
            throw HostNetworkError.hostCountOutOfRange(requested: hostCount, allowed: allowed)
        }
        guard getuid() == 0 else { throw HostNetworkError.notRoot }
        Self.sweepStale()

        self.hostCount = hostCount
        self.subnetPrefix = "10.\(Int.random(in: 100...199)).\(Int.random(in: 0...255))"
        let existing = Set(Namespaces.list())
        var runID: String
        repeat {
            runID = String((0..<5).map { _ in "abcdefghijklmnopqrstuvwxyz0123456789".randomElement() ?? "x" })
        } while FileManager.default.fileExists(atPath: "\(RunRecord.root)/\(runID)")
            || existing.contains { $0.hasPrefix("flt\(runID)-") }
        self.runID = runID
        self.record = RunRecord(runID: runID)

        // The record first, naming every namespace about to be made, so that a crash at any point
        // from here on leaves something the next sweep can find.
        let me = getpid()
        try record.create(ownerPID: me, ownerStartTime: ProcessTable.startTime(of: me) ?? 0, namespaces: namespaces)
        do {
            try build()
        } catch {
            try? shutdown()
            throw error
        }
    }

    deinit {
        try? shutdown()
    }

    /// Runs `body` with a new network of `hostCount` hosts and shuts it down after, whether `body`
    /// returns or throws. (A process killed outright leaves the network to the next sweep.)
    public static func with<Result>(
        hostCount: Int, _ body: (HostNetwork) async throws -> Result
    ) async throws -> Result {
        let network = try HostNetwork(hostCount: hostCount)
        let result: Result
        do {
            result = try await body(network)
        } catch {
            try? network.shutdown()
            throw error
        }
        try network.shutdown()
        return result
    }

    private func build() throws {
        for name in namespaces { try Command.check(["ip", "netns", "add", name]) }
        let bridge = bridgeNamespace
        try ip(bridge, "link", "set", "lo", "up")
        try ip(bridge, "link", "add", "br0", "type", "bridge")
        try ip(bridge, "link", "set", "br0", "up")
        for host in hosts {
            let namespace = "flt\(runID)-h\(host)"
            // Made in the bridge's namespace with the peer created straight into the host's:
            // neither end ever exists in the root namespace, even for a moment.
            try ip(bridge, "link", "add", "h\(host)", "type", "veth", "peer", "name", "eth0", "netns", namespace)
            try ip(bridge, "link", "set", "h\(host)", "master", "br0", "up")
            try ip(namespace, "addr", "add", "\(subnetPrefix).\(host)/24", "dev", "eth0")
            try ip(namespace, "link", "set", "eth0", "up")
            try ip(namespace, "link", "set", "lo", "up")
        }
    }

    // MARK: Names and addresses

    /// The namespace of `host`; throws `hostOutOfRange` for a number outside `hosts`.
    public func namespace(of host: Int) throws -> String {
        try check(host)
        return "flt\(runID)-h\(host)"
    }

    /// The IPv4 address of `host` (without the prefix length).
    public func address(of host: Int) throws -> String {
        try check(host)
        return "\(subnetPrefix).\(host)"
    }

    // MARK: Processes

    /// Starts `arguments` (the program is looked up on PATH) inside `host`'s namespace, in a
    /// process group of its own, with `environment` added to this process's, stdin from
    /// /dev/null and stdout and stderr appended to `logPath` (discarded when nil). Returns its pid:
    /// `nsenter` execs the command in place, so the pid is the command's.
    @discardableResult
    public func start(host: Int, arguments: [String], environment: [String: String] = [:],
                      logPath: String? = nil) throws -> pid_t
    {
        try check(host)
        return try state.withLock { state in
            try checkLive(state)
            if let running = state.processes[host], !Command.hasEnded(running) {
                throw HostNetworkError.alreadyRunning(host: host, pid: running.processIdentifier)
            }
            let launch = Launch(arguments: arguments, environment: environment, logPath: logPath)
            state.processes[host] = try launchLocked(host: host, launch)
            state.launches[host] = launch
            try writeProcessRecord(state)
            return state.processes[host]?.processIdentifier ?? -1
        }
    }

    /// The pid of `host`'s process while it runs.
    public func pid(of host: Int) throws -> pid_t? {
        try check(host)
        return state.withLock { state in
            state.processes[host].flatMap { Command.hasEnded($0) ? nil : $0.processIdentifier }
        }
    }

    /// SIGKILLs `host`'s process and its process group (what it forked and did not move to a
    /// group of its own), and waits for it to end. Nothing running: nothing to do. With
    /// `alone`, the process only: an agent whose services, in its group, must live on.
    public func kill9(host: Int, alone: Bool = false) throws {
        try check(host)
        try state.withLock { state in
            guard let process = state.processes.removeValue(forKey: host) else { return }
            Self.killGroup(process, signal: SIGKILL, grace: .zero, alone: alone)
            try writeProcessRecord(state)
        }
    }

    /// SIGTERMs `host`'s process group, waits up to `timeout` for the process to end, then
    /// SIGKILLs the group.
    public func stop(host: Int, timeout: Duration = .seconds(5)) throws {
        try check(host)
        try state.withLock { state in
            guard let process = state.processes.removeValue(forKey: host) else { return }
            Self.killGroup(process, signal: SIGTERM, grace: timeout)
            try writeProcessRecord(state)
        }
    }

    /// Starts the last command started on `host` again, with the same arguments, environment
    /// and log, after stopping it (`stop`) if it still runs: an agent restarted on its state,
    /// which lives wherever its arguments say. Returns the new pid.
    @discardableResult
    public func restart(host: Int, stopTimeout: Duration = .seconds(5), alone: Bool = false) throws -> pid_t {
        try check(host)
        return try state.withLock { state in
            try checkLive(state)
            guard let launch = state.launches[host] else { throw HostNetworkError.nothingStarted(host: host) }
            if let process = state.processes.removeValue(forKey: host) {
                Self.killGroup(process, signal: SIGTERM, grace: stopTimeout, alone: alone)
            }
            state.processes[host] = try launchLocked(host: host, launch)
            try writeProcessRecord(state)
            return state.processes[host]?.processIdentifier ?? -1
        }
    }

    /// Runs `arguments` inside `host`'s namespace to completion and returns its status and
    /// output; one that outlives `timeout` is killed with its process group and throws
    /// `commandTimedOut`.
    public func run(host: Int, arguments: [String], environment: [String: String] = [:],
                    timeout: Duration = .seconds(10)) throws -> CommandOutput
    {
        let namespace = try namespace(of: host)
        try state.withLock { try checkLive($0) }
        return try Command.run(["nsenter", "--net=/run/netns/" + namespace, "--"] + arguments, environment: environment, timeout: timeout)
    }

    private func launchLocked(host: Int, _ launch: Launch) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try Command.executable(named: "nsenter"))
        process.arguments = ["--net=/run/netns/flt\(runID)-h\(host)", "--"] + launch.arguments
        process.environment = ProcessInfo.processInfo.environment.merging(launch.environment) { $1 }
        process.standardInput = FileHandle.nullDevice
        if let logPath = launch.logPath {
            if !FileManager.default.fileExists(atPath: logPath) {
                _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            }
            guard let log = FileHandle(forWritingAtPath: logPath) else {
                throw HostNetworkError.commandFailed(command: launch.arguments, status: -1, stderr: "cannot open log \(logPath)")
            }
            _ = try? log.seekToEnd()
            process.standardOutput = log
            process.standardError = log
        } else {
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
        }
        do {
            try process.run()
        } catch {
            throw HostNetworkError.commandFailed(
                command: ["nsenter", "--net=/run/netns/flt\(runID)-h\(host)", "--"] + launch.arguments, status: -1, stderr: "\(error)")
        }
        return process
    }

    /// Sends `signal` to the process group `process` leads (Foundation makes every child a group
    /// leader), waits up to `grace` for the process to end, then SIGKILLs the group and waits.
    private static func killGroup(_ process: Process, signal: Int32, grace: Duration, alone: Bool = false) {
        let pid = process.processIdentifier
        // The group, or with `alone` the process itself.
        let target = alone ? pid : -pid
        guard !Command.hasEnded(process) else {
            if !alone { kill(-pid, SIGKILL) }  // its children may still be running in its group
            return
        }
        kill(target, signal)
        if signal != SIGKILL && Command.waitForExit(process, timeout: grace) {
            if !alone { kill(-pid, SIGKILL) }
            return
        }
        kill(target, SIGKILL)
        _ = Command.waitForExit(process, timeout: .seconds(5))
    }

    // MARK: Faults

    /// Cuts `host` off: its port on the bridge goes down, so nothing reaches it or leaves it
    /// (its `eth0` loses carrier, as when a cable is pulled). Its processes keep running.
    public func cut(host: Int) throws {
        try check(host)
        try state.withLock { try checkLive($0) }
        try ip(bridgeNamespace, "link", "set", "h\(host)", "down")
    }

    /// Undoes `cut`: the port comes up again (the bridge runs no STP, so it forwards at once).
    public func heal(host: Int) throws {
        try check(host)
        try state.withLock { try checkLive($0) }
        try ip(bridgeNamespace, "link", "set", "h\(host)", "up")
    }

    /// Delays every frame to and from `host` by `delay` (each way: a round trip with it grows by
    /// twice `delay`) and drops each with probability `loss` (0...1, each way), replacing any
    /// earlier impairment of it. `seed` makes the drops repeatable. See `ImpairmentRelay`.
    public func impair(host: Int, delay: Duration = .zero, loss: Double = 0, seed: UInt64 = 1) throws {
        try check(host)
        guard delay >= .zero, delay <= .seconds(60) else {
            throw HostNetworkError.invalidImpairment("delay \(delay) is outside 0...60 seconds")
        }
        guard loss.isFinite, (0...1).contains(loss) else {
            throw HostNetworkError.invalidImpairment("loss \(loss) is outside 0...1 (a probability)")
        }
        let python = try Command.executable(named: "python3")
        try state.withLock { state in
            try checkLive(state)
            try clearImpairmentLocked(host: host, &state)
            let bridge = bridgeNamespace
            // h<i> off the bridge, a new pair i<i> (on the bridge) and r<i> (for the relay); the
            // relay then joins h<i> to r<i>. Whether h<i> is up (cut) is left as it was.
            try ip(bridge, "link", "set", "h\(host)", "nomaster")
            try ip(bridge, "link", "add", "i\(host)", "type", "veth", "peer", "name", "r\(host)")
            try ip(bridge, "link", "set", "r\(host)", "up")
            try ip(bridge, "link", "set", "i\(host)", "master", "br0", "up")

            let logPath = "\(record.directory)/relay-h\(host).log"
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
            guard let log = FileHandle(forWritingAtPath: logPath) else {
                throw HostNetworkError.recordFailed(path: logPath, reason: "cannot open")
            }
            defer { try? log.close() }
            let delayMilliseconds = Double(delay.components.seconds) * 1000 + Double(delay.components.attoseconds) / 1e15
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try Command.executable(named: "ip"))
            process.arguments = [
                "netns", "exec", bridge, python, "-c", ImpairmentRelay.script,
                "h\(host)", "r\(host)", "\(delayMilliseconds)", "\(loss)", "\(seed)",
            ]
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = log
            process.standardError = log
            do {
                try process.run()
            } catch {
                throw HostNetworkError.relayDidNotStart(host: host, log: "\(error)")
            }
            state.relays[host] = process
            try writeProcessRecord(state)

            let deadline = ContinuousClock.now + .seconds(5)
            while true {
                let text = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
                if text.hasPrefix("ready") { return }
                if Command.hasEnded(process) || ContinuousClock.now >= deadline {
                    try? clearImpairmentLocked(host: host, &state)
                    throw HostNetworkError.relayDidNotStart(host: host, log: text.isEmpty ? "no output within 5 s" : text)
                }
                usleep(5_000)
            }
        }
    }

    /// Undoes `impair`: the relay ends, its veth pair goes, and `h<i>` is on the bridge again.
    /// Not impaired: nothing to do.
    public func clearImpairment(host: Int) throws {
        try check(host)
        try state.withLock { state in
            try checkLive(state)
            try clearImpairmentLocked(host: host, &state)
        }
    }

    private func clearImpairmentLocked(host: Int, _ state: inout State) throws {
        guard let relay = state.relays.removeValue(forKey: host) else { return }
        Self.killGroup(relay, signal: SIGKILL, grace: .zero)
        try writeProcessRecord(state)
        try ip(bridgeNamespace, "link", "delete", "i\(host)")  // and r<i> with it
        try ip(bridgeNamespace, "link", "set", "h\(host)", "master", "br0")
    }

    // MARK: Cleanup

    /// Kills every process the network started, and anything else inside its namespaces,
    /// deletes the namespaces and removes the run's record. Calling it again does nothing.
    /// Throws `cleanupIncomplete` naming whatever is left; the record then stays, for a later
    /// sweep to finish once this process has ended.
    public func shutdown() throws {
        let processes: [Process]? = state.withLock { state in
            guard !state.isShutDown else { return nil }
            state.isShutDown = true
            defer {
                state.processes = [:]
                state.relays = [:]
            }
            return Array(state.processes.values) + Array(state.relays.values)
        }
        guard let processes else { return }
        for process in processes { kill(-process.processIdentifier, SIGKILL) }
        var problems = Namespaces.remove(namespaces)
        for process in processes where !Command.waitForExit(process, timeout: .seconds(3)) {
            problems.append("pid \(process.processIdentifier) did not end after SIGKILL")
        }
        let left = Set(Namespaces.list()).intersection(namespaces)
        if !left.isEmpty { problems.append("namespaces \(left.sorted()) still listed") }
        guard problems.isEmpty else { throw HostNetworkError.cleanupIncomplete(problems) }
        try record.remove()
    }

    /// Removes what runs whose owner has died left behind: for each record under
    /// `/run/flotilla-netns/` whose owner pid is gone (or names another process now: the start
    /// time differs), kills the recorded process groups and every process in the run's
    /// namespaces, deletes the namespaces (those recorded and any other `flt<run>-…`) and then the
    /// record. A record without an owner yet is left alone for 30 s (a run being created). Runs
    /// under an exclusive lock on `/run/flotilla-netns/.lock`, so two sweeps never race. Returns
    /// the run ids it removed.
    @discardableResult
    public static func sweepStale() -> [String] {
        try? FileManager.default.createDirectory(atPath: RunRecord.root, withIntermediateDirectories: true)
        let lock = open("\(RunRecord.root)/.lock", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        if lock >= 0 { flock(lock, LOCK_EX) }
        defer { if lock >= 0 { close(lock) } }

        var swept: [String] = []
        for record in RunRecord.all() {
            if let owner = record.owner() {
                if ProcessTable.isAlive(owner.pid, startTime: owner.startTime) { continue }
            } else if record.ageSeconds() < 30 {
                continue
            }
            for started in record.processes() where ProcessTable.isAlive(started.pid, startTime: started.startTime) {
                kill(-started.pid, SIGKILL)
                kill(started.pid, SIGKILL)
            }
            let prefix = "flt\(record.runID)-"
            let names = Set(record.namespaces()).union(Namespaces.list().filter { $0.hasPrefix(prefix) })
            let problems = Namespaces.remove(names.sorted())
            if problems.isEmpty, (try? record.remove()) != nil {
                swept.append(record.runID)
            } else {
                FileHandle.standardError.write(Data("flotilla-netns: sweeping run \(record.runID): \(problems)\n".utf8))
            }
        }
        return swept
    }

    // MARK: Helpers

    private func check(_ host: Int) throws {
        guard hosts.contains(host) else { throw HostNetworkError.hostOutOfRange(host: host, hosts: hosts) }
    }

    private func checkLive(_ state: State) throws {
        if state.isShutDown { throw HostNetworkError.shutDown(runID: runID) }
    }

    private func ip(_ namespace: String, _ arguments: String...) throws {
        try Command.check(["ip", "-n", namespace] + arguments)
    }

    private func writeProcessRecord(_ state: State) throws {
        var started: [RunRecord.Started] = []
        for (host, process) in state.processes.sorted(by: { $0.key < $1.key }) {
            started.append(entry("h\(host)", process))
        }
        for (host, process) in state.relays.sorted(by: { $0.key < $1.key }) {
            started.append(entry("relay\(host)", process))
        }
        try record.writeProcesses(started.filter { $0.startTime != 0 })
    }

    private func entry(_ role: String, _ process: Process) -> RunRecord.Started {
        let pid = process.processIdentifier
        return RunRecord.Started(role: role, pid: pid, startTime: ProcessTable.startTime(of: pid) ?? 0)
    }
}
