import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// One real agentd server, a child process of this benchmark.
final class ServerProcess: @unchecked Sendable {
    let number: Int
    let name: String
    let stateDirectory: String
    let socket: String
    let port: Int
    let process: Process
    /// Its Raft id, once known from the member list.
    var memberID: UInt64 = 0

    init(number: Int, name: String, stateDirectory: String, socket: String, port: Int, process: Process) {
        self.number = number
        self.name = name
        self.stateDirectory = stateDirectory
        self.socket = socket
        self.port = port
        self.process = process
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var logPath: String { stateDirectory + "/agentd.log" }
}

/// Three agentd servers on loopback, in a directory of their own; `stop()` removes it all
/// (processes, directory, cgroups).
final class ServerCluster: @unchecked Sendable {
    let root: String
    let agentd: String
    let keepDirectory: Bool
    private(set) var servers: [ServerProcess] = []
    private(set) var token = ""
    private var stopped = false

    static let cgroupPrefix = "flotilla-cbench-"

    init(agentd: String, baseDirectory: String, keepDirectory: Bool) throws {
        guard FileManager.default.isExecutableFile(atPath: agentd) else {
            throw UsageError("no agentd at \(agentd): build it with `swift build -c release --scratch-path .build-release --product agentd`, or give --agentd")
        }
        var template = Array((baseDirectory + "/cluster-bench-XXXXXX").utf8CString)
        guard mkdtemp(&template) != nil else { throw UsageError("mkdtemp in \(baseDirectory): \(String(cString: strerror(errno)))") }
        root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        self.agentd = agentd
        self.keepDirectory = keepDirectory
    }

    /// Starts server 1 (bootstrap), then 2 and 3 joining it as servers; returns once the
    /// member list shows 3 voters.
    func start() async throws {
        let first = try launch(number: 1, extra: ["--bootstrap"])
        let tokenPath = first.stateDirectory + "/cluster/join-token"
        try await waitUntil("server 1 answers on its API socket and wrote its join token", timeout: .seconds(60)) {
            guard FileManager.default.fileExists(atPath: tokenPath) else { return false }
            return (try? await UnixHTTP.get(first.socket, "/v1/version", timeout: .seconds(5))) != nil
        }
        token = try String(contentsOfFile: tokenPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        for number in 2...3 {
            _ = try launch(number: number, extra: ["--server", "--join", "127.0.0.1:\(first.port)", "--token", token])
        }
        try await waitUntil("3 voters in the member list", timeout: .seconds(120)) {
            guard let members = try? await self.members(), members.filter({ $0.role == "voter" }).count == 3 else { return false }
            for server in self.servers {
                server.memberID = members.first { $0.name == server.name }?.id ?? 0
            }
            return self.servers.allSatisfy { $0.memberID != 0 }
        }
    }

    private func launch(number: Int, extra: [String]) throws -> ServerProcess {
        let directory = "\(root)/s\(number)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let port = try Self.freePort()
        let socket = directory + "/api.sock"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: agentd)
        process.arguments = [
            "--state-dir", directory, "--node-name", "s\(number)", "--api-socket", socket,
            "--advertise", "127.0.0.1:\(port)", "--cluster-listen", "127.0.0.1:\(port)",
            "--cgroup-parent", "\(Self.cgroupPrefix)\(number)", "--log-level", "warning", "--dns-addr", "off",
        ] + extra
        _ = FileManager.default.createFile(atPath: directory + "/agentd.log", contents: nil)
        let output = try FileHandle(forWritingTo: URL(fileURLWithPath: directory + "/agentd.log"))
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let server = ServerProcess(number: number, name: "s\(number)", stateDirectory: directory, socket: socket, port: port, process: process)
        servers.append(server)
        return server
    }

    struct Member {
        var id: UInt64
        var name: String
        var role: String
        var leader: Bool
    }

    /// The member list as server `via` (default: the first running one) knows it.
    func members(via server: ServerProcess? = nil) async throws -> [Member] {
        let target = server ?? servers.first { $0.isRunning } ?? servers[0]
        let list = try await UnixHTTP.get(target.socket, "/v1/cluster/members", timeout: .seconds(10)).json() as? [[String: Any]] ?? []
        return list.map { entry in
            Member(
                id: (entry["id"] as? NSNumber)?.uint64Value ?? 0, name: entry["name"] as? String ?? "",
                role: entry["role"] as? String ?? "", leader: entry["leader"] as? Bool ?? false)
        }
    }

    /// The server that leads now, as the servers agree (asked of each until one knows).
    func leader() async throws -> ServerProcess {
        for server in servers where server.isRunning {
            guard let members = try? await members(via: server), let leader = members.first(where: \.leader) else { continue }
            if let found = servers.first(where: { $0.memberID == leader.id }) { return found }
        }
        throw UsageError("no server knows a leader")
    }

    /// A server that is not `leader`.
    func follower(besides leader: ServerProcess) -> ServerProcess {
        servers.first { $0 !== leader && $0.isRunning } ?? leader
    }

    /// The Raft figures a server's /metrics shows (updated by the agent once a second).
    struct RaftMetrics {
        var term: Double = 0
        var commit: Double = 0
        var applied: Double = 0
        var isLeader = false
    }

    func raftMetrics(_ server: ServerProcess) async throws -> RaftMetrics {
        let text = try await UnixHTTP.get(server.socket, "/metrics", timeout: .seconds(30)).text
        var metrics = RaftMetrics()
        for line in text.split(separator: "\n") where line.hasPrefix("flotilla_raft_") {
            let parts = line.split(separator: " ")
            guard parts.count >= 2, let value = Double(parts[1]) else { continue }
            switch parts[0] {
            case "flotilla_raft_term": metrics.term = value
            case "flotilla_raft_commit_index": metrics.commit = value
            case "flotilla_raft_applied_index": metrics.applied = value
            case "flotilla_raft_is_leader": metrics.isLeader = value == 1
            default: break
            }
        }
        return metrics
    }

    /// The state's index (`GET /v1/applications`' X-Flotilla-Index: the last entry that
    /// changed anything), cheap at any scale, unlike /v1/status, which lists every node.
    func stateIndex(_ server: ServerProcess) async throws -> UInt64 {
        let response = try await UnixHTTP.get(server.socket, "/v1/applications", timeout: .seconds(60))
        return UInt64(response.headers["x-flotilla-index"] ?? "") ?? 0
    }

    /// The last lines of a server's log, for a failure report.
    func logTail(_ server: ServerProcess, lines: Int = 15) -> String {
        let text = (try? String(contentsOfFile: server.logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Kills the servers, removes their cgroups and (unless kept) their directory. Idempotent.
    func stop() {
        guard !stopped else { return }
        stopped = true
        for server in servers where server.isRunning { kill(server.pid, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(10)
        while servers.contains(where: \.isRunning) && ContinuousClock.now < deadline { usleep(50_000) }
        for server in servers where server.isRunning { kill(server.pid, SIGKILL) }
        for server in servers { server.process.waitUntilExit() }
        Self.removeCgroups()
        if keepDirectory {
            print("state and logs kept in \(root)")
        } else {
            try? FileManager.default.removeItem(atPath: root)
        }
    }

    /// /sys/fs/cgroup/flotilla-cbench-* and the same under every v1 hierarchy: whatever they
    /// hold killed, then removed deepest first.
    static func removeCgroups() {
        var roots = ["/sys/fs/cgroup"]
        if let hierarchies = try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup") {
            roots += hierarchies.map { "/sys/fs/cgroup/" + $0 }
        }
        for root in roots {
            guard let entries = try? FileManager.default.contentsOfDirectory(atPath: root) else { continue }
            for entry in entries where entry.hasPrefix(cgroupPrefix) {
                let top = root + "/" + entry
                var directories = [top]
                if let walker = FileManager.default.enumerator(atPath: top) {
                    while let path = walker.nextObject() as? String {
                        var isDirectory: ObjCBool = false
                        if FileManager.default.fileExists(atPath: top + "/" + path, isDirectory: &isDirectory), isDirectory.boolValue {
                            directories.append(top + "/" + path)
                        }
                    }
                }
                for directory in directories {
                    let procs = (try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8)) ?? ""
                    for pid in procs.split(separator: "\n").compactMap({ Int32($0) }) { kill(pid, SIGKILL) }
                }
                for directory in directories.sorted(by: { $0.count > $1.count }) { rmdir(directory) }
            }
        }
    }

    /// A TCP port free on loopback now.
    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer -> Bool in
                bind(descriptor, pointer, length) == 0 && getsockname(descriptor, pointer, &length) == 0
            }
        }
        guard bound else { throw UsageError("no free port: \(String(cString: strerror(errno)))") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

/// Polls `condition` every 200 ms until it holds, or throws after `timeout`.
func waitUntil(_ what: String, timeout: Duration, _ condition: () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + timeout
    while true {
        if try await condition() { return }
        guard ContinuousClock.now < deadline else { throw UsageError("timed out after \(timeout) waiting for \(what)") }
        try await Task.sleep(for: .milliseconds(200))
    }
}
