extension RaftCore {
    /// Hands leadership to `target` (thesis §3.10): proposals stop, the target is brought up
    /// to date, then told to campaign at once with `TimeoutNow`. Abandoned if it does not
    /// finish within an election timeout. Does nothing if `target` is this node or the
    /// transfer to it is already under way.
    public mutating func transferLeadership(to target: NodeID) throws(RaftError) {
        guard isLeader else { throw .notLeader(leaderHint: leader) }
        if target == id || leaderState.transferTarget == target { return }
        guard membership.current.voters.contains(target) else { throw .invalidTransferTarget(target) }
        leaderState.transferTarget = target
        // The transfer has one election timeout to finish, counted from now.
        electionElapsedTicks = 0
        if leaderState.progress[target]?.match == log.lastIndex {
            sendTimeoutNow(to: target)
        } else {
            // Not held for an append in flight: that one may be lost, and the transfer's clock
            // is running.
            sendAppend(to: target, mayHold: false)
        }
    }

    /// The node leadership is being handed to, or zero.
    public var leadershipTransferTarget: NodeID {
        guard case .leader(let state) = roleState else { return 0 }
        return state.transferTarget
    }

    mutating func sendTimeoutNow(to peer: NodeID) {
        send(to: peer, .timeoutNow)
    }
}
