import AgentAPI
import Cluster
import Controller
import Crypto
import Foundation
import Raft

/// What a client agent asks any server over a call: `[u8 kind][body]`, kinds from 16 up
/// (a server's requests to the leader, ``LeaderRequest``, use the ones below). A client speaks
/// for its own node only: the server checks every request against the caller's member name.
enum ServerRequest: Sendable, Hashable {
    /// Commit this `ControllerEntry` (its bytes): the node's registration or status reports.
    case submit([UInt8])
    /// The node is alive (not a Raft entry; the server passes it to the leader).
    case heartbeat(node: String)
    /// The node's assignment, once it differs from the copy with `digest` taken at `after`, or
    /// "unchanged" after `wait` (a blocking query: Nomad's `Node.GetClientAllocs`).
    case watch(node: String, after: UInt64, digest: [UInt8], wait: Duration)
    /// An API request made on a client's socket (``ForwardedHTTPRequest``, JSON); the answer
    /// is a ``ForwardedHTTPResponse``.
    case api([UInt8])

    static let firstKind: UInt8 = 16

    var encoded: [UInt8] {
        switch self {
        case .submit(let entry): [16] + entry
        case .heartbeat(let node): [17] + Array(node.utf8)
        case .watch(let node, let after, let digest, let wait):
            [18] + LeaderRequest.bytes(after) + LeaderRequest.bytes(UInt64(wait / .milliseconds(1))) + [UInt8(digest.count)] + digest + Array(node.utf8)
        case .api(let request): [19] + request
        }
    }

    init(decoding bytes: [UInt8]) throws(APIError) {
        let body = bytes.dropFirst()
        switch bytes.first {
        case 16: self = .submit(Array(body))
        case 17: self = .heartbeat(node: String(decoding: body, as: UTF8.self))
        case 18 where body.count >= 17 && body.count >= 17 + Int(body[body.startIndex + 16]):
            let after = LeaderRequest.number(body.prefix(8))
            let wait = Duration.milliseconds(Int64(clamping: LeaderRequest.number(body.dropFirst(8).prefix(8))))
            let digestCount = Int(body[body.startIndex + 16])
            let digest = Array(body.dropFirst(17).prefix(digestCount))
            let node = String(decoding: body.dropFirst(17 + digestCount), as: UTF8.self)
            self = .watch(node: node, after: after, digest: digest, wait: wait)
        case 19: self = .api(Array(body))
        default: throw APIError(code: APIErrorCode.badRequest, message: "a request to a server this agent does not know")
        }
    }
}

/// How a server answers a client's ``ServerRequest/submit(_:)``: the entry's index, or why
/// applying it was refused.
enum SubmitAnswer: Sendable, Hashable {
    case applied(index: UInt64)
    case refused(String)

    var encoded: [UInt8] {
        switch self {
        case .applied(let index): [0] + LeaderRequest.bytes(index)
        case .refused(let reason): [1] + Array(reason.utf8)
        }
    }

    init(decoding bytes: [UInt8]) throws(APIError) {
        switch (bytes.first, bytes.count) {
        case (0, 9): self = .applied(index: LeaderRequest.number(bytes.dropFirst()))
        case (1, _): self = .refused(String(decoding: bytes.dropFirst(), as: UTF8.self))
        default: throw APIError(code: APIErrorCode.internalError, message: "a server answered a submit with \(bytes.count) bytes that mean nothing")
        }
    }
}

/// The wire form of assignments: JSON, and a digest that says whether two copies hold the
/// same (the index they were taken at left out: a copy is not news because the state moved
/// on elsewhere).
enum AssignmentCoding {
    static func encode(_ assignment: NodeAssignment) throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return Array(try encoder.encode(assignment))
    }

    static func decode(_ bytes: some Collection<UInt8>) throws -> NodeAssignment {
        try JSONDecoder().decode(NodeAssignment.self, from: Data(bytes))
    }

    static func digest(_ assignment: NodeAssignment) -> [UInt8] {
        var content = assignment
        content.index = 0
        guard let bytes = try? encode(content) else { return [] }
        return Array(SHA256.hash(data: bytes))
    }
}

/// A server's side of ``ServerRequest``s.
struct ServerRequests: Sendable {
    let gateway: ClusterGateway
    let api: ForwardedAPIResponder
    /// The longest a watch is held before it answers "unchanged".
    static let maximumWatch = Duration.seconds(60)

    func answer(_ request: ServerRequest, from caller: NodeID) async throws -> [UInt8] {
        // A member's only: a removed client's certificate still verifies until it expires (up
        // to a day), and a relayed API request runs with the API's full authority.
        guard let member = gateway.directory.member(caller) else {
            throw APIError(
                code: APIErrorCode.unauthorized,
                message: "member \(caller) is not in this server's member list (removed?); its requests are refused")
        }
        switch request {
        case .submit(let bytes):
            let entry = try ControllerEntry.decode(bytes)
            try requireOwnNode(Self.node(of: entry.command), member: member)
            let (result, index) = try await gateway.submit(entry)
            if let error = result.error { return SubmitAnswer.refused("\(error)").encoded }
            return SubmitAnswer.applied(index: index).encoded
        case .heartbeat(let node):
            try requireOwnNode(node, member: member)
            return [try await gateway.heartbeat(node: node) ? 1 : 0]
        case .watch(let node, let after, let digest, let wait):
            try requireOwnNode(node, member: member)
            return try await watch(node: node, after: after, digest: digest, wait: min(wait, Self.maximumWatch))
        case .api(let bytes):
            try requireRunning()
            let request = try JSONDecoder().decode(ForwardedHTTPRequest.self, from: Data(bytes))
            return Array(try JSONEncoder().encode(try await api.answer(request)))
        }
    }

    /// Answers once this replica has applied the client's copy's index (a server that is behind
    /// never hands an older copy back) and its assignment differs from the copy; else
    /// `[0]` ("unchanged") after `wait`.
    private func watch(node: String, after: UInt64, digest: [UInt8], wait: Duration) async throws -> [UInt8] {
        let deadline = ContinuousClock.now + wait
        var seen: UInt64 = 0
        while true {
            let assignment = await gateway.snapshot().assignment(for: node)
            if assignment.index >= after && AssignmentCoding.digest(assignment) != digest {
                return [1] + (try AssignmentCoding.encode(assignment))
            }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return [0] }
            seen = await gateway.feed.wait(after: max(seen, gateway.feed.index), timeout: left)
            try requireRunning()
        }
    }

    /// Refuses once this server is stopping (its change feed finished): the client asks another
    /// server. A watch woken by the finish would otherwise go round until its deadline (the
    /// finished feed answers every wait at once), and a relayed blocking query (the client's
    /// catalog follower) be answered at once and asked again, both until the server's exit.
    private func requireRunning() throws {
        guard !gateway.feed.isFinished else { throw ServerStopping() }
    }

    /// The node a client's entry speaks for; nil for an entry a client may not send.
    static func node(of command: ControllerCommand) -> String? {
        switch command {
        case .registerNode(let registration): registration.name
        case .reportInstanceStatus(let node, _): node
        default: nil
        }
    }

    private func requireOwnNode(_ node: String?, member: MemberRecord) throws {
        guard let node, NodeName.same(member.name, node) else {
            throw APIError(
                code: APIErrorCode.unauthorized,
                message: "member \(member.id) (\(member.name)) may register, report and heartbeat its own node only")
        }
    }
}

/// What a stopping server answers a client's watch or relayed request.
struct ServerStopping: Error, CustomStringConvertible {
    var description: String { "this server is stopping; ask another" }
}
