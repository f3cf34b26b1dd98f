import AgentAPI
import Cluster
import Controller
import Raft

/// What a server asks the leader for over a call: `[u8 kind][body]`.
enum LeaderRequest: Sendable, Hashable {
    /// Propose this `ControllerEntry` (its bytes); the answer is its log index.
    case propose([UInt8])
    /// Hand leadership to this member.
    case transferLeadership(to: NodeID)
    /// Take this member out of Raft and out of the member list; the answer is the index of the
    /// list's change.
    case removeMember(NodeID)
    /// Node `node` is alive; the answer is 1 when the cluster knows it, 0 when it does not.
    case heartbeat(node: String)
    /// Add this member to Raft as a learner (a server joining through a follower).
    case addLearner(NodeID)

    var encoded: [UInt8] {
        switch self {
        case .propose(let entry): [1] + entry
        case .transferLeadership(let target): [2] + Self.bytes(target)
        case .removeMember(let id): [3] + Self.bytes(id)
        case .heartbeat(let node): [4] + Array(node.utf8)
        case .addLearner(let id): [5] + Self.bytes(id)
        }
    }

    init(decoding bytes: [UInt8]) throws(APIError) {
        switch (bytes.first, bytes.count) {
        case (1, _): self = .propose(Array(bytes.dropFirst()))
        case (2, 9): self = .transferLeadership(to: Self.number(bytes.dropFirst()))
        case (3, 9): self = .removeMember(Self.number(bytes.dropFirst()))
        case (4, _): self = .heartbeat(node: String(decoding: bytes.dropFirst(), as: UTF8.self))
        case (5, 9): self = .addLearner(Self.number(bytes.dropFirst()))
        default: throw APIError(code: APIErrorCode.badRequest, message: "a request to the leader this agent does not know")
        }
    }

    static func bytes(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.littleEndian) { Array($0) } }

    static func number(_ bytes: ArraySlice<UInt8>) -> UInt64 {
        bytes.reversed().reduce(0) { $0 << 8 | UInt64($1) }
    }
}

/// Hands a follower's request to the leader over the mutual-TLS connection. For a write, the
/// entry goes as the follower stamped it; the leader proposes it and answers its log index,
/// and the follower takes the result from its own replica once it has applied that index:
/// applying is deterministic, so every replica computes the same result for an entry.
public protocol WriteForwarder: Sendable {
    /// Sends `request` (a `LeaderRequest`'s bytes) to `leader`; returns the index it answers.
    func forward(_ request: [UInt8], to leader: NodeID) async throws -> UInt64
    /// Whether a connection to `member` is up now (a member killed loses it at once, before
    /// Raft stops hearing from it).
    func isConnected(to member: NodeID) -> Bool
}

/// The leader's answer to a ``LeaderRequest``: `[u8 kind][u64 little-endian]`.
enum LeaderAnswer: Sendable, Hashable {
    /// Done; the number the request asks for (a log index, or 1/0 for a heartbeat).
    case done(UInt64)
    /// The member asked is not the leader (any more, or not yet) and did nothing; `hint` is
    /// the leader it knows, 0 for none. Unlike a failure this is safe to send again elsewhere.
    case notLeader(hint: NodeID)

    var encoded: [UInt8] {
        switch self {
        case .done(let number): [0] + LeaderRequest.bytes(number)
        case .notLeader(let hint): [1] + LeaderRequest.bytes(hint)
        }
    }

    init(decoding bytes: [UInt8], from member: NodeID) throws(CallError) {
        switch (bytes.first, bytes.count) {
        case (0, 9): self = .done(LeaderRequest.number(bytes.dropFirst()))
        case (1, 9): self = .notLeader(hint: LeaderRequest.number(bytes.dropFirst()))
        default: throw CallError.failed(member, reason: "answered \(bytes.count) bytes this agent does not understand as a leader's answer")
        }
    }
}

/// The member a request went to answered that it is not the leader, and did nothing.
struct NotLeaderRefusal: Error, CustomStringConvertible {
    let member: NodeID
    let hint: NodeID

    var description: String {
        "member \(member) is not the leader" + (hint == 0 ? " and knows of none yet" : " (it names member \(hint))")
    }
}

extension ClusterTransport: WriteForwarder {
    public func forward(_ request: [UInt8], to leader: NodeID) async throws -> UInt64 {
        switch try LeaderAnswer(decoding: try await call(leader, payload: request, timeout: .seconds(30)), from: leader) {
        case .done(let number): return number
        case .notLeader(let hint): throw NotLeaderRefusal(member: leader, hint: hint)
        }
    }
}

/// What an agent answers over calls: the leader's side of ``LeaderRequest``s (what followers
/// ask; an entry that does not decode is refused before it reaches the log), and any server's
/// side of a client's ``ServerRequest``s.
struct LeaderRequests: CallHandler {
    let gateway: ClusterGateway
    let api: ForwardedAPIResponder

    func answer(_ payload: [UInt8], from caller: NodeID) async throws -> [UInt8] {
        if let kind = payload.first, kind >= ServerRequest.firstKind {
            return try await ServerRequests(gateway: gateway, api: api).answer(ServerRequest(decoding: payload), from: caller)
        }
        // A client's certificate is the cluster's too: only servers may ask the leader to
        // propose entries as they are, move leadership or remove members. A server is one
        // recorded so, or, before the first leader of a formed cluster has recorded it, one of
        // the Raft group (clients never are).
        let role = gateway.directory.member(caller)?.role
        let inGroup = role == nil ? await gateway.node.status.confState : ConfState()
        guard role == .server || (role == nil && (inGroup.voters.contains(caller) || inGroup.learners.contains(caller))) else {
            throw APIError(code: APIErrorCode.unauthorized, message: "member \(caller) is not a server of this cluster; only servers make requests to the leader")
        }
        let request = try LeaderRequest(decoding: payload)
        // A member that does not lead says so in the answer, not as a failure: the asker may
        // then safely send the request again to whichever member leads (during an election,
        // a follower's view of the leader lags behind).
        // A heartbeat is answered without waiting for the node's actor (see heartbeatHere).
        let leader = if case .heartbeat = request { gateway.node.lastKnownLeader } else { await gateway.node.leader }
        guard leader == gateway.node.id else { return LeaderAnswer.notLeader(hint: leader).encoded }
        let index: UInt64
        switch request {
        case .propose(let entry):
            _ = try ControllerEntry.decode(entry)
            do {
                index = try await gateway.node.propose(entry)
            } catch RaftNodeError.notLeader(let hint) {
                return LeaderAnswer.notLeader(hint: hint).encoded
            }
        case .transferLeadership(let target):
            try await gateway.transferLeadershipHere(to: target)
            index = 0
        case .removeMember(let id):
            index = try await gateway.removeMemberHere(id)
        case .heartbeat(let node):
            index = try await gateway.heartbeatHere(node: node) ? 1 : 0
        case .addLearner(let id):
            try await gateway.addLearnerHere(id)
            index = 0
        }
        return LeaderAnswer.done(index).encoded
    }
}
