import Foundation
import Linearizability
import NetnsHarness
import Raft
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Jepsen's register test on three agentd servers on three hosts: clients read, write and
/// compare-and-set a few keys through different servers while a nemesis kills servers with
/// SIGKILL and restarts them, cuts one host off (a minority, sometimes the leader) or two (the
/// majority), and heals. The history the clients saw must be linearizable, which also means
/// that no acknowledged write is lost: the final reads, after healing, see the last of them.
///
/// `KV_CHAOS_SECONDS` sets how long the faults go on (25 s by default; 600 for a long run by
/// hand); `KV_CHAOS_SEED` replays a nemesis schedule that a failing run printed.
@Suite(.dedicatedThread, .timeLimit(.minutes(20)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct KVChaosTests {
    static let keys = ["reg/a", "reg/b", "reg/c"]

    @Test func registersStayLinearizableUnderKillsAndPartitions() throws {
        let environment = ProcessInfo.processInfo.environment
        let seconds = environment["KV_CHAOS_SECONDS"].flatMap(Double.init) ?? 25
        let seed = environment["KV_CHAOS_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...999_999)
        let network = try HostNetwork(hostCount: 3)
        let (root, servers) = NetnsClusterTests.agents(3)
        defer { NetnsClusterTests.cleanUp(network, root: root, servers) }
        try NetnsClusterTests.form(network, servers, servers: 3)

        let history = HistoryRecorder()
        let end = MonotonicTime.now() + UInt64(seconds * 1e9)
        let clients = (0..<5).map { RegisterClient(id: $0, sockets: servers.map(\.socket), history: history, seed: seed &+ UInt64($0)) }
        let finished = DispatchGroup()
        for client in clients {
            finished.enter()
            Thread.detachNewThread {
                client.run(until: end)
                finished.leave()
            }
        }
        var nemesis = Nemesis(network: network, servers: servers, seed: seed)
        try nemesis.run(until: end)
        finished.wait()
        try nemesis.healAll()
        try NetnsClusterTests.waitUntil("a leader after healing", timeout: 60) { NetnsClusterTests.leaderHost(servers) != nil }

        // The final reads: every key through every server, each retried until it answers (a
        // server restarted by the last heal may not be listening yet: a refused connection is
        // no answer).
        let reader = RegisterClient(id: 99, sockets: servers.map(\.socket), history: history, seed: seed)
        for key in Self.keys {
            for server in servers.indices {
                try NetnsClusterTests.waitUntil("a final read of \(key) through host \(server + 1)", timeout: 60) {
                    if case .ok = reader.read(key, through: server) { true } else { false }
                }
            }
        }

        let operations = history.operations
        let counts = Dictionary(grouping: operations) { "\($0.outcome)".prefix(while: { $0 != "(" }) }.mapValues(\.count)
        let report = "seed \(seed) (KV_CHAOS_SEED=\(seed) replays the schedule); \(operations.count) operations \(counts.sorted { $0.key < $1.key })\nschedule:\n" + nemesis.schedule.joined(separator: "\n")
        print(report)
        let acknowledgedWrites = operations.filter { if case .write = $0.kind { $0.outcome == .ok(nil) } else { false } }.count
        #expect(acknowledgedWrites >= 10, "too few writes got through to check anything\n\(report)")
        // Both ways of answering were under the checker: the fast path's counters (since each
        // server's last start) are not all zero.
        let fastTaken = try servers.map { try Self.fastPathTaken(socket: $0.socket) }
        #expect(fastTaken.reduce(0, +) > 0, "no server's KV fast path took a request: \(fastTaken)\n\(report)")
        let result = try checkLinearizability(operations, deadline: .now + .seconds(300))
        let logs = servers.map { "host \($0.host):\n\($0.log)" }.joined(separator: "\n")
        #expect(result == .linearizable, "\(report)\n\(result)\n\(logs)")
    }

    /// The plain reads and writes a server's KV fast path took since it started.
    static func fastPathTaken(socket: String) throws -> Int {
        let metrics = try UnixHTTP.request("GET", "/metrics", socket: socket).body
        return metrics.split(separator: "\n").reduce(0) { sum, line in
            guard line.hasPrefix("flotilla_api_kv_fast_writes_total ") || line.hasPrefix("flotilla_api_kv_fast_reads_total ") else { return sum }
            return sum + (Double(line.split(separator: " ")[1]).map { Int($0) } ?? 0)
        }
    }

    /// `?stale` serves a server's own copy and says how old it may be: a follower in touch
    /// names the leader and heard from it moments ago; cut off, it goes on answering from its
    /// copy (behind the majority's writes) and says it knows no leader, while a default read
    /// there, which must ask the leader, fails.
    @Test func staleReadsOnAFollowerSayHowOldTheyMayBe() throws {
        let network = try HostNetwork(hostCount: 3)
        let (root, servers) = NetnsClusterTests.agents(3)
        defer { NetnsClusterTests.cleanUp(network, root: root, servers) }
        try NetnsClusterTests.form(network, servers, servers: 3)
        let leader = try #require(NetnsClusterTests.leaderHost(servers))
        let follower = servers.first { $0.host != leader }!
        let other = servers.first { $0.host != leader && $0.host != follower.host }!
        // A plain write on a follower, as a kept-alive client sends it: the follower's KV fast
        // path takes it and forwards it to the leader.
        let takenBefore = try Self.fastPathTaken(socket: other.socket)
        let forwarded = try UnixHTTP.exchange("PUT", "/v1/kv/stale/k", body: "one", socket: other.socket, connectionClose: false)
        #expect(forwarded.status == 200 && forwarded.body.contains(#""key":"stale/k""#), "\(forwarded.status) \(forwarded.body)")
        #expect(try Self.fastPathTaken(socket: other.socket) == takenBefore + 1)

        try NetnsClusterTests.waitUntil("the follower's copy to have the write") {
            try UnixHTTP.request("GET", "/v1/kv/stale/k?stale=true&raw=true", socket: follower.socket).body == "one"
        }
        let inTouch = try UnixHTTP.exchange("GET", "/v1/kv/stale/k?stale=true", socket: follower.socket)
        #expect(inTouch.headers["x-flotilla-known-leader"] == "true", "\(inTouch.headers)")
        #expect((inTouch.headers["x-flotilla-last-contact"].flatMap(Int.init) ?? .max) < 1000, "\(inTouch.headers)")

        try network.cut(host: follower.host)
        defer { try? network.heal(host: follower.host) }
        #expect(try UnixHTTP.request("PUT", "/v1/kv/stale/k", body: "two", socket: other.socket).status == 200)
        try NetnsClusterTests.waitUntil("the cut-off follower to say it knows no leader", timeout: 30) {
            let read = try UnixHTTP.exchange("GET", "/v1/kv/stale/k?stale=true&raw=true", socket: follower.socket)
            #expect(read.status == 200 && read.body == "one", "a stale read on the cut-off follower: \(read.status) \(read.body)")
            return read.headers["x-flotilla-known-leader"] == "false" && read.headers["x-flotilla-last-contact"] == nil
        }
        let barrier = try UnixHTTP.exchange("GET", "/v1/kv/stale/k", socket: follower.socket, timeout: .seconds(30))
        #expect(barrier.status >= 500, "a linearizable read on a cut-off follower answered \(barrier.status): \(barrier.body)")
    }
}

/// One monotonic clock for every client of a run, in nanoseconds.
enum MonotonicTime {
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }
}

/// The operations every client recorded.
final class HistoryRecorder: @unchecked Sendable {
    private let lock = NSLock()
    private var recorded: [RecordedOperation] = []

    func record(_ operation: RecordedOperation) { lock.withLock { recorded.append(operation) } }
    var operations: [RecordedOperation] { lock.withLock { recorded } }
}

/// A client of the register workload: one operation at a time through a server chosen at
/// random each time, with a short timeout, as a real client with retries elsewhere behaves.
final class RegisterClient: @unchecked Sendable {
    let id: Int
    let sockets: [String]
    let history: HistoryRecorder
    private var random: SplitMix64
    private var sequence = 0
    /// Requests sent so far.
    private var performed = 0
    /// The value last seen of each key: what a compare-and-set expects.
    private var lastSeen: [String: String?] = [:]
    static let timeout = Duration.seconds(3)

    init(id: Int, sockets: [String], history: HistoryRecorder, seed: UInt64) {
        self.id = id
        self.sockets = sockets
        self.history = history
        random = SplitMix64(seed: seed)
    }

    func run(until end: UInt64) {
        while MonotonicTime.now() < end {
            let key = KVChaosTests.keys[Int.random(in: 0..<KVChaosTests.keys.count, using: &random)]
            let server = Int.random(in: 0..<sockets.count, using: &random)
            switch Int.random(in: 0..<100, using: &random) {
            case ..<40: _ = read(key, through: server)
            case ..<75: write(key, through: server)
            default: compareAndSet(key, through: server)
            }
        }
    }

    /// Reads `key`; returns the outcome recorded.
    func read(_ key: String, through server: Int) -> RecordedOperation.Outcome {
        perform(key, .read, server: server, "GET", "/v1/kv/\(key)", body: nil) { status, body in
            switch status {
            case 200:
                let value = (try? JSONDecoder().decode(KVEntry.self, from: Data(body.utf8))).flatMap { Data(base64Encoded: $0.value ?? "") }
                guard let value else { return .unknown }
                return .ok(String(decoding: value, as: UTF8.self))
            case 404: return .ok(nil)
            default: return nil
            }
        }
    }

    private func write(_ key: String, through server: Int) {
        let value = nextValue()
        _ = perform(key, .write(value), server: server, "PUT", "/v1/kv/\(key)", body: value) { status, _ in
            status == 200 ? .ok(nil) : nil
        }
    }

    private func compareAndSet(_ key: String, through server: Int) {
        let expected = lastSeen[key] ?? nil
        let new = nextValue()
        let compare =
            expected.map { #"{"key": "\#(key)", "value": "\#(Data($0.utf8).base64EncodedString())"}"# } ?? #"{"key": "\#(key)", "modifyIndex": 0}"#
        let body = #"{"compares": [\#(compare)], "operations": [{"op": "set", "key": "\#(key)", "value": "\#(Data(new.utf8).base64EncodedString())"}]}"#
        _ = perform(key, .cas(expected: expected, new: new), server: server, "PUT", "/v1/txn", body: body) { status, body in
            switch status {
            case 200: .ok(nil)
            case 409 where body.contains("compare_failed"): .compareFailed
            default: nil
            }
        }
    }

    private func nextValue() -> String {
        sequence += 1
        return "c\(id)-\(sequence)"
    }

    /// Sends one request and records it. `outcome` reads a 2xx or a documented refusal;
    /// nil leaves the status to the rule: another 4xx did nothing, a 5xx or no answer may
    /// have done anything (a server that could not be reached at all was never asked).
    /// Every other request goes as a kept-alive client sends it, which the servers' KV fast
    /// path answers for plain reads and writes (what kv-bench measures); the rest with
    /// `Connection: close`, which the router answers.
    private func perform(
        _ key: String, _ kind: RecordedOperation.Kind, server: Int, _ method: String, _ path: String, body: String?,
        outcome: (Int, String) -> RecordedOperation.Outcome?
    ) -> RecordedOperation.Outcome {
        let call = MonotonicTime.now()
        var result: RecordedOperation.Outcome
        performed += 1
        do {
            let answer = try UnixHTTP.exchange(
                method, path, body: body, socket: sockets[server], timeout: Self.timeout, connectionClose: performed % 2 == 0)
            result = outcome(answer.status, answer.body) ?? ((400..<500).contains(answer.status) ? .failed : .unknown)
        } catch is UnixHTTP.NotConnected {
            result = .failed
        } catch {
            result = .unknown
        }
        let returned = MonotonicTime.now()
        history.record(RecordedOperation(client: id, key: key, kind: kind, callTime: call, returnTime: max(returned, call), outcome: result))
        switch (kind, result) {
        case (.read, .ok(let value)): lastSeen[key] = .some(value)
        case (.write(let value), .ok), (.cas(_, let value), .ok): lastSeen[key] = .some(value)
        default: break
        }
        if result == .failed { usleep(50_000) }  // a server down: not a busy loop against it
        return result
    }
}

/// The faults, from a seed: each round picks one, holds it a moment, undoes it, and lets the
/// cluster settle. What it did, and when, is the schedule a failing run prints.
struct Nemesis {
    let network: HostNetwork
    let servers: [NetnsClusterTests.Server]
    var random: SplitMix64
    private(set) var schedule: [String] = []
    private let start = MonotonicTime.now()
    private var killed: Set<Int> = []
    private var cut: Set<Int> = []

    init(network: HostNetwork, servers: [NetnsClusterTests.Server], seed: UInt64) {
        self.network = network
        self.servers = servers
        random = SplitMix64(seed: seed ^ 0x6E656D65)
    }

    mutating func run(until end: UInt64) throws {
        let hosts = servers.map(\.host)
        while MonotonicTime.now() < end {
            pause(milliseconds: 800 + Int.random(in: 0..<1200, using: &random))
            let first = hosts[Int.random(in: 0..<hosts.count, using: &random)]
            switch Int.random(in: 0..<4, using: &random) {
            case 0:
                try network.kill9(host: first)
                killed.insert(first)
                note("kill -9 h\(first)")
            case 1:
                try cutOff([first], "a minority")
            case 2:
                let leader = NetnsClusterTests.leaderHost(servers) ?? first
                try cutOff([leader], "the leader")
            default:
                let second = hosts.filter { $0 != first }[Int.random(in: 0..<hosts.count - 1, using: &random)]
                try cutOff([first, second], "a majority")
            }
            pause(milliseconds: 1000 + Int.random(in: 0..<2000, using: &random))
            try healAll()
        }
    }

    private mutating func cutOff(_ hosts: [Int], _ what: String) throws {
        for host in hosts {
            try network.cut(host: host)
            cut.insert(host)
        }
        note("cut off \(what): " + hosts.map { "h\($0)" }.joined(separator: ", "))
    }

    /// Heals every cut and restarts every killed server.
    mutating func healAll() throws {
        for host in cut.sorted() { try network.heal(host: host) }
        for host in killed.sorted() { try network.restart(host: host) }
        if !cut.isEmpty || !killed.isEmpty {
            note("heal" + (killed.isEmpty ? "" : ", restart " + killed.sorted().map { "h\($0)" }.joined(separator: ", ")))
        }
        cut = []
        killed = []
    }

    private func pause(milliseconds: Int) { usleep(UInt32(milliseconds) * 1000) }

    private mutating func note(_ event: String) {
        schedule.append(String(format: "%7.2fs  ", Double(MonotonicTime.now() - start) / 1e9) + event)
    }
}
