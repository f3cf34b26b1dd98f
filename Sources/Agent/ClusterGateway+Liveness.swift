import AgentAPI
import Controller
import Raft

extension ClusterGateway {
    /// A heartbeat from node `name`, taken to the leader's memory (``liveness``): never a Raft
    /// entry, so heartbeats cost the log nothing while nothing changes. Answers whether the
    /// cluster knows the node (one it does not know registers again). Waits up to
    /// ``leaderWait`` for a leader, as writes do.
    /// Neither this nor ``heartbeatHere(node:)`` waits for the Raft node's actor, which may be
    /// busy applying a large plan: they read the leader and the known nodes as last published.
    public func heartbeat(node name: String) async throws(APIError) -> Bool {
        let deadline = ContinuousClock.now + Self.leaderWait
        while true {
            let leader = node.lastKnownLeader
            if leader == node.id { return try await heartbeatHere(node: name) }
            if leader != 0, forwarder != nil {
                return try await forwardUnapplied(.heartbeat(node: name), to: leader) == 1
            }
            guard ContinuousClock.now < deadline else { throw Self.apiError(RaftNodeError.notLeader(leaderHint: 0)) }
            try await Self.pause(.milliseconds(50), cancelled: Self.cancelledWithoutLeader)
        }
    }

    /// The leader's side of ``heartbeat(node:)``.
    func heartbeatHere(node name: String) async throws(APIError) -> Bool {
        let leader = node.lastKnownLeader
        guard leader == node.id else { throw Self.apiError(RaftNodeError.notLeader(leaderHint: leader)) }
        let known = directory.knowsNode(name)
        if known { liveness.withLock { $0.heard(from: name, at: .now) } }
        return known
    }

    /// Sends a request the leader answers without a log entry; returns its number.
    private func forwardUnapplied(_ request: LeaderRequest, to leader: NodeID) async throws(APIError) -> UInt64 {
        guard let forwarder else { throw Self.apiError(RaftNodeError.notLeader(leaderHint: leader)) }
        do {
            return try await forwarder.forward(request.encoded, to: leader)
        } catch let error as APIError {
            throw error
        } catch {
            // A refusal (NotLeaderRefusal) included: the next heartbeat goes to the new leader.
            throw APIError(code: APIErrorCode.noLeader, message: "passing a heartbeat to the leader (node \(leader)): \(error)")
        }
    }

    /// When the leader last heard from each of `nodes`, on the wall clock; empty on an agent
    /// that does not lead (heartbeats reach the leader only).
    func lastHeard(from nodes: [String]) async -> [String: Timestamp] {
        guard await node.leader == node.id else { return [:] }
        let (wallNow, now) = (Self.now(), ContinuousClock.now)
        return liveness.withLock { liveness in
            var heard: [String: Timestamp] = [:]
            for name in nodes {
                if let instant = liveness.lastHeard(from: name) { heard[name] = wallNow.adding(.zero - (now - instant)) }
            }
            return heard
        }
    }
}
