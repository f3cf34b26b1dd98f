import Cluster
import Controller
import Foundation
import Raft
import Synchronization

/// A client agent reduced to what the servers see of it: it joins with the token (a member
/// with role client and a certificate of the cluster CA), dials every server over mutual TLS
/// without listening itself, registers its node and sends heartbeats, as `ServerFollower`
/// does, through the calls of `Sources/Agent/ServerRequests.swift`.
final class SimulatedClient: Sendable {
    let number: Int
    let name: String
    let nodeID: NodeID
    let transport: ClusterTransport
    let servers: [NodeID]
    /// The server this client calls first.
    let preferred: Mutex<NodeID>

    /// Label on every simulated node, so that manifests can keep off the real servers' nodes.
    static let label = ("cluster-bench", "simulated")

    private init(number: Int, name: String, nodeID: NodeID, transport: ClusterTransport, servers: [NodeID], preferred: NodeID) {
        self.number = number
        self.name = name
        self.nodeID = nodeID
        self.transport = transport
        self.servers = servers
        self.preferred = Mutex(preferred)
    }

    /// Joins through `host:port` and connects to every server the join listed.
    static func join(number: Int, host: String, port: Int, token: JoinToken) async throws -> SimulatedClient {
        let name = nodeName(number)
        var attempt = 0
        let joined: ClusterJoin.Joined
        while true {
            do {
                joined = try await ClusterJoin.join(
                    host: host, port: port, token: token, nodeName: name, role: .client, advertiseAddress: "127.0.0.1:\(20_000 + number % 40_000)",
                    timeout: .seconds(30))
                break
            } catch {
                // Joins at the same moment may pick the same member id; the server retries a
                // few times, then refuses. Try again.
                attempt += 1
                guard attempt < 20 else { throw error }
                try await Task.sleep(for: .milliseconds(50 * attempt + Int.random(in: 0...100)))
            }
        }
        let credentials = joined.credentials
        var configuration = TransportConfiguration(
            localID: joined.nodeID, localName: name, listenPort: 0, tls: try credentials.tlsMaterial(), verifier: credentials.peerVerifier)
        configuration.dialsEveryPeer = true
        let transport = try ClusterTransport(configuration: configuration, receiver: IgnoringReceiver())
        let servers = joined.servers.sorted { $0.id < $1.id }
        transport.setPeers(servers)
        return SimulatedClient(
            number: number, name: name, nodeID: joined.nodeID, transport: transport, servers: servers.map(\.id),
            preferred: servers.first?.id ?? 0)
    }

    func prefer(_ server: NodeID) { preferred.withLock { $0 = server } }

    /// Calls the preferred server, else the others in turn (waiting a moment for connections
    /// on a fresh start), as ServerFollower.callServer does.
    func call(_ payload: [UInt8], timeout: Duration) async throws -> [UInt8] {
        let first = preferred.withLock { $0 }
        let order = [first] + servers.filter { $0 != first }
        var lastError: (any Error)?
        for attempt in 0..<100 {
            for server in order where transport.isConnected(to: server) {
                do {
                    return try await transport.call(server, payload: payload, timeout: timeout)
                } catch {
                    lastError = error
                }
            }
            if lastError != nil { break }
            if attempt < 99 { try await Task.sleep(for: .milliseconds(50)) }
        }
        throw lastError ?? UsageError("\(name): no connection to any server")
    }

    /// Registers this node (a server answers `[0] + index` or `[1] + reason`).
    func register(cpuMillicores: Int, memoryBytes: Int64) async throws {
        let registration = Self.registration(number: number, cpuMillicores: cpuMillicores, memoryBytes: memoryBytes)
        let entry = ControllerEntry(command: .registerNode(registration), time: Timestamp(unixMilliseconds: unixMilliseconds()))
        var attempt = 0
        while true {
            do {
                let answer = try await call([16] + entry.encoded(), timeout: .seconds(30))
                guard answer.first == 0, answer.count == 9 else {
                    throw UsageError("\(name): registration refused: \(String(decoding: answer.dropFirst(), as: UTF8.self))")
                }
                return
            } catch {
                // A server that has not applied this member's join yet refuses it: again.
                attempt += 1
                guard attempt < 10 else { throw error }
                try await Task.sleep(for: .milliseconds(200 * attempt))
            }
        }
    }

    /// What simulated node `number` registers: the label, and the capacity asked for.
    static func registration(number: Int, cpuMillicores: Int, memoryBytes: Int64) -> NodeRegistration {
        NodeRegistration(
            name: nodeName(number), address: "127.0.0.1:\(20_000 + number % 40_000)", labels: [label.0: label.1],
            attributes: NodeAttributes(os: "linux", arch: "x86_64", kernel: "6.1.0", cpus: max(1, cpuMillicores / 1000), memoryBytes: memoryBytes),
            capacity: NodeCapacity(cpuMillicores: cpuMillicores, memoryBytes: memoryBytes))
    }

    static func nodeName(_ number: Int) -> String { String(format: "cbench-node-%04d", number) }

    /// One heartbeat; whether the cluster knows the node.
    func heartbeat() async throws -> Bool {
        try await call([17] + Array(name.utf8), timeout: .seconds(10)) == [1]
    }

    /// One blocking watch of this node's assignment, as ServerFollower.run sends it: answers
    /// once the assignment differs from the copy with `digest` (index `after`), or after `wait`.
    func watch(after: UInt64, digest: [UInt8], wait: Duration) async throws -> NodeAssignment? {
        var payload: [UInt8] = [18]
        payload += littleEndian(after)
        payload += littleEndian(UInt64(wait / .milliseconds(1)))
        payload += [UInt8(digest.count)] + digest + Array(name.utf8)
        let answer = try await call(payload, timeout: wait + .seconds(10))
        guard answer.first == 1 else { return nil }
        return try JSONDecoder().decode(NodeAssignment.self, from: Data(answer.dropFirst()))
    }

    /// The digest a server compares a watch's copy with (AssignmentCoding.digest): SHA-256 of
    /// the assignment's sorted-keys JSON with its index zeroed.
    static func digest(_ assignment: NodeAssignment) -> [UInt8] {
        var content = assignment
        content.index = 0
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let bytes = try? encoder.encode(content) else { return [] }
        return SHA256.hash(Array(bytes))
    }

    func shutdown() async { await transport.shutdown() }

    private func littleEndian(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }
}

/// Clients take no part in Raft: whatever Raft message reaches one is dropped.
struct IgnoringReceiver: RaftMessageReceiver {
    func receive(_ messages: [Message]) {}
}
