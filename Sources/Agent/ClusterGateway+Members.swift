import AgentAPI
import Controller
import Raft

extension ClusterGateway {
    /// Hands leadership to `target` (thesis §3.10), through the leader wherever this runs;
    /// returns once `target` leads, or fails after a few election timeouts.
    public func transferLeadership(to target: NodeID) async throws(APIError) {
        let leader = await node.leader
        if leader == target { return }
        if leader == node.id {
            try await transferLeadershipHere(to: target)
        } else {
            guard leader != 0 else { throw Self.apiError(RaftNodeError.notLeader(leaderHint: 0)) }
            _ = try await forward(.transferLeadership(to: target), to: leader)
        }
        let deadline = ContinuousClock.now + .seconds(10)
        while await node.leader != target {
            guard ContinuousClock.now < deadline else {
                throw APIError(code: APIErrorCode.timeout, message: "node \(target) did not take over within 10s; it may be behind or unreachable")
            }
            try await Self.pause(.milliseconds(20), cancelled: APIError(
                code: APIErrorCode.timeout, message: "cancelled before node \(target) took over; it may still take over"))
        }
    }

    /// On the leader: asks the core to transfer (it refuses a target that is not a voter).
    func transferLeadershipHere(to target: NodeID) async throws(APIError) {
        let voters = await node.status.confState.voters
        guard voters.contains(target) else {
            throw APIError(code: APIErrorCode.notFound, message: "node \(target) is not a voter; see `deployctl cluster members`")
        }
        do {
            try await node.transferLeadership(to: target)
        } catch {
            throw Self.apiError(error)
        }
    }

    /// Adds member `id` to Raft as a learner (a joining server, already in the member list),
    /// through the leader wherever this runs; the leader promotes it once it has caught up.
    public func addLearner(_ id: NodeID) async throws(APIError) {
        let leader = await node.leader
        if leader == node.id { return try await addLearnerHere(id) }
        guard leader != 0 else { throw Self.apiError(RaftNodeError.notLeader(leaderHint: 0)) }
        _ = try await forward(.addLearner(id), to: leader)
    }

    /// On the leader. One membership change at a time: while another is in flight (a
    /// promotion, a join beside this one) the core refuses; wait for it, then say "not now"
    /// (overloaded), which the joiner retries (it keeps its id: the member record is in).
    func addLearnerHere(_ id: NodeID) async throws(APIError) {
        let deadline = ContinuousClock.now + .seconds(5)
        while true {
            do {
                _ = try await node.proposeConfChange(ConfChange(.addLearner, id))
                return
            } catch RaftNodeError.rejected(.invalidConfChange) {
                // Already a member (a server joining again with a fresh state): keep its role.
                return
            } catch RaftNodeError.rejected(let busy) where busy.isTransient {
                guard ContinuousClock.now < deadline else {
                    throw APIError(code: APIErrorCode.overloaded, message: "the cluster is busy with another membership change (\(busy))")
                }
                try await Self.pause(.milliseconds(50), cancelled: APIError(
                    code: APIErrorCode.overloaded, message: "cancelled while the cluster was busy with another membership change (\(busy))"))
            } catch {
                throw Self.apiError(error)
            }
        }
    }

    /// Refuses to remove voter `id` when the voters left that this leader reaches would be no
    /// majority of them (etcd's strict reconfiguration check): removing a live voter while
    /// another is down leaves a group that cannot commit until the down one returns. A voter
    /// is reached when its connection is up and Raft heard from it in the current check-quorum
    /// round; the flags are cleared at each round, so the check looks a few times over one.
    func requireMajorityReachable(withoutVoter id: NodeID) async throws(APIError) {
        var heard: Set<NodeID> = []
        var voters: Set<NodeID> = []
        var reached: Set<NodeID> = []
        for poll in 0..<4 {
            if poll > 0 { try? await Task.sleep(for: .milliseconds(250)) }
            let status = await node.status
            voters = status.confState.voters.subtracting([id])
            heard.formUnion(status.progress.filter(\.value.recentActive).keys)
            reached = voters.filter { $0 == node.id || (heard.contains($0) && forwarder?.isConnected(to: $0) != false) }
            if reached.count > voters.count / 2 { return }
        }
        let silent = voters.subtracting(reached).sorted()
        throw APIError(
            code: "member_conflict",
            message: "removing node \(id) would leave \(voters.count) voters of which \(reached.count) answer the leader, "
                + "no majority: the cluster could not commit until node \(silent.map(String.init).joined(separator: ", node ")) returns. "
                + "Bring it back, or remove it first")
    }

    /// Takes member `id` out of Raft and out of the member list, through the leader wherever
    /// this runs; returns the index of the list's change.
    public func removeMember(_ id: NodeID) async throws(APIError) -> UInt64 {
        let leader = await node.leader
        if leader == node.id { return try await removeMemberHere(id) }
        guard leader != 0 else { throw Self.apiError(RaftNodeError.notLeader(leaderHint: 0)) }
        let index = try await forward(.removeMember(id), to: leader)
        return index
    }

    /// On the leader. A leader does not remove itself: transfer leadership first.
    func removeMemberHere(_ id: NodeID) async throws(APIError) -> UInt64 {
        guard id != node.id else {
            throw APIError(
                code: "member_conflict",
                message: "node \(id) leads; transfer leadership first (`deployctl cluster transfer-leadership ID`), then remove it")
        }
        let status = await node.status
        if status.confState.voters.contains(id) { try await requireMajorityReachable(withoutVoter: id) }
        if status.confState.voters.contains(id) || status.confState.learners.contains(id) {
            do {
                _ = try await node.proposeConfChange(ConfChange(.removeNode, id))
            } catch {
                throw Self.apiError(error)
            }
        }
        let (result, index) = try await submit(.removeMember(id: id))
        if let error = result.error, status.confState.voters.union(status.confState.learners).contains(id) == false {
            throw APIError(code: APIErrorCode.notFound, message: "node \(id) is not a member: \(error.message)")
        }
        return index
    }
}
