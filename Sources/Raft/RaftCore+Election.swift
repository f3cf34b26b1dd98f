extension RaftCore {
    /// Starts an election now, as if the election timeout had passed: a pre-vote first
    /// (thesis §9.6). Does nothing on a leader or on a node that is not a voter.
    public mutating func campaign() {
        guard !isLeader, isPromotable else { return }
        startCampaign(preVote: true, leadershipTransfer: false)
    }

    /// Asks every voter for a (pre-)vote. A pre-vote asks "would you vote for me in term + 1?"
    /// without raising the term, so that a node that cannot win (cut off, or with a stale log)
    /// does not force the group into a new term (thesis §9.6).
    mutating func startCampaign(preVote: Bool, leadershipTransfer: Bool) {
        let campaignTerm: UInt64
        if preVote {
            becomePreCandidate()
            campaignTerm = term + 1
        } else {
            becomeCandidate()
            campaignTerm = term
        }
        recordVote(from: id, granted: true)
        // A single voter wins at once; the tally has moved us on.
        guard isCampaigning(preVote: preVote) else { return }
        let request = VoteRequest(lastLogIndex: log.lastIndex, lastLogTerm: log.lastTerm,
                                  leadershipTransfer: leadershipTransfer)
        for voter in membership.current.voters.sorted() where voter != id {
            send(to: voter, term: campaignTerm, preVote ? .preVote(request) : .vote(request))
        }
    }

    private func isCampaigning(preVote: Bool) -> Bool {
        switch roleState {
        case .preCandidate: preVote
        case .candidate: !preVote
        default: false
        }
    }

    /// Answers a vote or pre-vote request (paper §5.2, §5.4.1; thesis §9.6).
    mutating func handleVoteRequest(_ message: Message, _ request: VoteRequest, isPreVote: Bool) {
        // We can vote for the sender if we already did in this term, or have voted for nobody
        // and know no leader; a pre-vote for a later term is always possible since it binds
        // nothing (etcd raft).
        let canVote = vote == message.from
            || (vote == 0 && leader == 0)
            || (isPreVote && message.term > term)
        let granted = canVote && log.isUpToDate(lastIndex: request.lastLogIndex, lastTerm: request.lastLogTerm)
        let response = VoteResponse(granted: granted)
        if granted {
            // A granted answer carries the campaign's term, so the candidate can count it.
            send(to: message.from, term: message.term, isPreVote ? .preVoteResponse(response) : .voteResponse(response))
            if !isPreVote {
                electionElapsedTicks = 0
                vote = message.from
            }
        } else {
            send(to: message.from, isPreVote ? .preVoteResponse(response) : .voteResponse(response))
        }
    }

    /// Counts an answer and acts on the outcome once it is decided.
    mutating func recordVote(from voter: NodeID, granted: Bool) {
        let isPreVote: Bool
        var votes: [NodeID: Bool]
        switch roleState {
        case .preCandidate(let current): (isPreVote, votes) = (true, current)
        case .candidate(let current): (isPreVote, votes) = (false, current)
        default: return
        }
        if votes[voter] == nil { votes[voter] = granted }
        roleState = isPreVote ? .preCandidate(votes: votes) : .candidate(votes: votes)

        let voters = membership.current.voters
        let quorum = voters.count / 2 + 1
        let grantedCount = voters.count(where: { votes[$0] == true })
        let rejectedCount = voters.count(where: { votes[$0] == false })
        if grantedCount >= quorum {
            if isPreVote {
                startCampaign(preVote: false, leadershipTransfer: false)
            } else {
                becomeLeader()
            }
        } else if rejectedCount > voters.count - quorum {
            // Cannot win any more: wait for a leader or the next timeout.
            becomeFollower(term: term, leader: 0)
        }
    }

    /// The leader hands over leadership: campaign at once, skipping pre-vote (thesis §3.10).
    mutating func handleTimeoutNow(from: NodeID) {
        guard isPromotable else { return }
        startCampaign(preVote: false, leadershipTransfer: true)
    }
}
