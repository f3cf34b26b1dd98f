import BlockingWork
import AgentAPI
import Cluster
import Controller
import Foundation
import Logging
import Manifest
import Raft
import Synchronization

/// A client agent's link to the cluster: it follows the servers through a stream of its
/// node's assignment (blocking watches, each resumed from the index of the copy it holds, on
/// whichever server answers), keeps that copy on disk, and hands it to the node worker, which
/// keeps running from it while no server answers. Its writes (registration, status reports)
/// and heartbeats go to a server too.
final class ServerFollower: NodeControl {
    private struct State {
        var assignment: NodeAssignment?
        var digest: [UInt8] = []
        var services: [InstanceID: Service] = [:]
        var servers: [MemberRecord] = []
        /// The server that answered last: asked first.
        var preferred: NodeID = 0
        var version: UInt64 = 0

        mutating func adopt(_ assignment: NodeAssignment) {
            self.assignment = assignment
            digest = AssignmentCoding.digest(assignment)
            services = assignment.services()
            version += 1
        }
    }

    let nodeName: String
    private let transport: ClusterTransport
    private let store: AssignmentStore
    private let logger: Logger
    private let state = Mutex(State())
    private let changes = ChangeFeed()
    /// How long a watch is held by the server before it answers "unchanged".
    static let watchWait = Duration.seconds(30)

    /// Starts from the copies on disk, or from `joinedServers` (the join's list) on a first start.
    init(nodeName: String, transport: ClusterTransport, store: AssignmentStore, joinedServers: [MemberRecord], logger: Logger) throws {
        self.nodeName = nodeName
        self.transport = transport
        self.store = store
        self.logger = logger
        let assignment = try store.loadAssignment()
        var servers = try store.loadServers() ?? []
        if servers.isEmpty {
            servers = joinedServers
            try store.save(servers: servers)
        }
        state.withLock { state in
            state.servers = servers
            if let assignment { state.adopt(assignment) }
        }
        if let assignment {
            logger.info("running from the saved assignment until a server answers", metadata: ["instances": "\(assignment.instances.count)", "index": "\(assignment.index)"])
        }
        transport.setPeers(servers.compactMap(ClusterMembership.peer))
    }

    // MARK: Following

    /// Runs until cancelled: watch, adopt what changed, again; with backoff while no server answers.
    func run() async {
        var failures = 0
        while !Task.isCancelled {
            let (after, digest) = state.withLock { ($0.assignment?.index ?? 0, $0.digest) }
            do {
                let request = ServerRequest.watch(node: nodeName, after: after, digest: digest, wait: Self.watchWait)
                let answer = try await callServer(request.encoded, timeout: Self.watchWait + .seconds(10))
                if failures > 0 { logger.notice("a server answers again", metadata: ["after failures": "\(failures)"]) }
                failures = 0
                if answer.first == 1 { try await adopt(AssignmentCoding.decode(answer.dropFirst())) }
            } catch {
                failures += 1
                if failures == 1 {
                    logger.warning("no server answers; running from the last copy of the assignment", metadata: ["error": "\(error)"])
                }
                let backoff = Duration.milliseconds(min(5_000, 250 << min(failures - 1, 5)))
                try? await Task.sleep(for: backoff + .milliseconds(Int.random(in: 0...100)))
            }
        }
    }

    /// Saves a new assignment (disk first), then hands it to the worker. The saves (a file
    /// written, renamed and synced with its directory each) run on a Dispatch thread: they come
    /// with every change of the assignment, and a thread of Swift's pool is one of two here.
    private func adopt(_ assignment: NodeAssignment) async throws {
        let store = self.store
        try await BlockingWork.run { try store.save(assignment) }
        let servers = assignment.servers
        let serversChanged = !servers.isEmpty && state.withLock { $0.servers != servers }
        if serversChanged {
            try await BlockingWork.run { try store.save(servers: servers) }
            transport.setPeers(servers.compactMap(ClusterMembership.peer))
        }
        let version = state.withLock { state in
            if serversChanged { state.servers = servers }
            state.adopt(assignment)
            return state.version
        }
        changes.publish(index: version, events: [])
    }

    /// The servers as the last assignment listed them, the last one that answered first.
    func knownServers() -> [MemberRecord] {
        state.withLock { state in state.servers.filter { $0.id == state.preferred } + state.servers.filter { $0.id != state.preferred } }
    }

    // MARK: NodeControl

    func register(_ registration: NodeRegistration) async throws {
        try await submit(.registerNode(registration))
    }

    func heartbeat(node: String) async throws -> Bool {
        try await callServer(ServerRequest.heartbeat(node: node).encoded, timeout: .seconds(10)) != [0]
    }

    func report(node: String, _ reports: [InstanceStatusReport]) async throws {
        try await submit(.reportInstanceStatus(node: node, reports: reports))
    }

    func work(of node: String) async -> NodeWork? {
        state.withLock { state in
            state.assignment.map { NodeWork(instances: $0.instances, services: state.services, keyValues: $0.boundValues) }
        }
    }

    func waitForChange(after version: UInt64, timeout: Duration) async -> UInt64 {
        await changes.wait(after: version, timeout: timeout)
    }

    /// An API request made on this client's socket, answered by a server.
    func relay(_ request: ForwardedHTTPRequest, timeout: Duration) async throws -> ForwardedHTTPResponse {
        let answer = try await callServer(
            ServerRequest.api(Array(JSONEncoder().encode(request))).encoded, timeout: timeout,
            repeatable: Self.safeMethods.contains(request.method.uppercased()))
        return try JSONDecoder().decode(ForwardedHTTPResponse.self, from: Data(answer))
    }

    /// A streaming API request made on this client's socket: opened on a server, whose answer's
    /// body is then pulled from that same server as it comes (``StreamCall``).
    func relayStream(_ request: ForwardedHTTPRequest) async throws -> (ForwardedHTTPResponse, AsyncThrowingStream<[UInt8], any Error>) {
        let body = Array(try JSONEncoder().encode(request))
        let server = try await connectedServer()
        let transport = self.transport
        let (head, data) = try await StreamCall.open(.api, body: body) { payload, timeout in
            try await transport.call(server, payload: payload, timeout: timeout)
        }
        return (try JSONDecoder().decode(ForwardedHTTPResponse.self, from: Data(head)), data)
    }

    /// The server that answered last if connected, else the first connected one.
    private func connectedServer() async throws -> NodeID {
        guard let server = try await connectedServers().first else { throw noServer() }
        return server
    }

    /// The connected servers, the one that answered last first. Connections are made in the
    /// background: a fresh start waits up to 1 s for one.
    private func connectedServers() async throws -> [NodeID] {
        for attempt in 0..<20 {
            let (servers, preferred) = state.withLock { ($0.servers.map(\.id), $0.preferred) }
            let connected = (servers.filter { $0 == preferred } + servers.filter { $0 != preferred }).filter(transport.isConnected)
            if !connected.isEmpty || attempt == 19 { return connected }
            try await Task.sleep(for: .milliseconds(50))
        }
        return []
    }

    private func noServer() -> AgentError {
        let known = state.withLock { $0.servers.map { "\($0.name) at \($0.address)" } }
        return AgentError.configuration("no connection to any server (known: \(known.joined(separator: ", ")))")
    }

    private func submit(_ command: ControllerCommand) async throws {
        let entry = ControllerEntry(command: command, time: ClusterGateway.now())
        let answer = try await callServer(ServerRequest.submit(entry.encoded()).encoded, timeout: .seconds(30))
        if case .refused(let reason) = try SubmitAnswer(decoding: answer) {
            throw APIError(code: APIErrorCode.badRequest, message: reason)
        }
    }

    /// The methods whose requests may run twice (RFC 9110 §9.2.1): only these go to another
    /// server after one that may have acted.
    private static let safeMethods: Set<String> = ["GET", "HEAD", "OPTIONS"]

    /// Calls the server that answered last, else each connected one in turn. A request that is
    /// not `repeatable` goes to the next server only when the last certainly did not act on it
    /// (no connection, or it refused): after a timeout or a lost connection it may have, and a
    /// second run would, say, refuse a `PUT ?cas` as a conflict with the first, or record an
    /// apply twice. That error goes back to the caller, whose to decide.
    private func callServer(_ payload: [UInt8], timeout: Duration, repeatable: Bool = true) async throws -> [UInt8] {
        // One pass over the connected servers; a server's refusal or silence is the caller's
        // to retry, not a reason to ask every server twenty times.
        var lastError: (any Error)?
        for server in try await connectedServers() {
            do {
                let answer = try await transport.call(server, payload: payload, timeout: timeout)
                state.withLock { $0.preferred = server }
                return answer
            } catch {
                lastError = error
                if !repeatable && error.mayHaveActed { break }
                // Cancelled (its client gone, or this agent stopping): asking the next server
                // would send the call again for nobody (a blocking query held there up to its wait).
                if Task.isCancelled { break }
            }
        }
        throw lastError ?? noServer()
    }
}
