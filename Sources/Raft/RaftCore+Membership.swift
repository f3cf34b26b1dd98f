extension RaftCore {
    /// Proposes a membership change of one server (thesis §4.1). It takes effect on each node
    /// as soon as the entry reaches its log; the application sees it among committed entries
    /// (kind `.configChange`, data decodable with `ConfChange(decoding:)`).
    ///
    /// Refused while another change is uncommitted, before the leader has committed an entry of
    /// its term, during a leadership transfer, when it would leave no voter, and when
    /// promoting a learner that has not caught up (thesis §4.2.1).
    @discardableResult
    public mutating func proposeConfChange(_ change: ConfChange) throws(RaftError) -> LogPosition {
        try checkCanPropose()
        // The leader's log may end with an uncommitted change from an earlier term; adding
        // another could let two disjoint majorities exist (Ongaro, raft-dev 2015). Committing
        // an entry of our own term settles it.
        guard log.termOrZero(at: log.committed) == term else { throw .leaderNotReady }
        guard membership.currentIndex <= log.committed else {
            throw .confChangePending(index: membership.currentIndex)
        }
        let conf = membership.current
        let nodeID = change.nodeID
        switch change.operation {
        case .addVoter:
            guard !conf.voters.contains(nodeID) else { throw .invalidConfChange("\(nodeID) is already a voter") }
            if conf.learners.contains(nodeID) {
                // A learner votes only once it holds everything committed, so that adding it
                // does not stall commits while it catches up (thesis §4.2.1).
                let match = leaderState.progress[nodeID]?.match ?? 0
                guard match >= log.committed else {
                    throw .learnerNotCaughtUp(nodeID: nodeID, match: match, required: log.committed)
                }
            }
        case .addLearner:
            guard !conf.learners.contains(nodeID) else { throw .invalidConfChange("\(nodeID) is already a learner") }
            if conf.voters == [nodeID] { throw .invalidConfChange("demoting \(nodeID) leaves no voter") }
        case .removeNode:
            guard conf.voters.contains(nodeID) || conf.learners.contains(nodeID) else {
                throw .invalidConfChange("\(nodeID) is not a member")
            }
            if conf.voters == [nodeID] { throw .invalidConfChange("removing \(nodeID) leaves no voter") }
        }
        return appendAsLeader([Entry(term: term, index: 0, kind: .configChange, data: change.encoded())])
    }

    /// The leader follows a membership change at once: tracks new members, forgets removed
    /// ones, and recounts commits and reads with the new majority.
    mutating func membershipDidChange() {
        let conf = membership.current
        let nextIndex = log.lastIndex
        leaderState.updateMembership(conf, selfID: id, nextIndex: nextIndex, maxInflight: config.maxInflightAppends)
        if maybeCommit(), isLeader { broadcastAppend() }
        if isLeader { releaseConfirmedReads() }
    }
}
