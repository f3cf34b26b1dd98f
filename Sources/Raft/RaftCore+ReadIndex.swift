extension RaftCore {
    /// Asks for a linearizable read (thesis §6.4, ReadIndex without leases). A `ReadState` with
    /// this `context` comes back in a later `Ready`; once the application has applied up to its
    /// index, reading the state machine is linearizable. On a follower the request goes to the
    /// leader (thesis §6.4.1), so followers can serve reads from their own state.
    ///
    /// Reads may be dropped if leadership changes; the caller retries after a timeout.
    /// Throws `.notLeader(leaderHint: 0)` when no leader is known.
    public mutating func readIndex(context: [UInt8]) throws(RaftError) {
        if isLeader {
            handleReadRequest(from: id, context: context)
            return
        }
        guard leader != 0 else { throw .notLeader(leaderHint: 0) }
        send(to: leader, .readIndex(ReadIndexRequest(context: context)))
    }

    /// The leader's side of ReadIndex (thesis §6.4): take the commit index once it is known to
    /// be current, then confirm leadership with a round of heartbeats.
    mutating func handleReadRequest(from requester: NodeID, context: [UInt8]) {
        // Step 1: until the leader commits an entry of its term it may not know the latest
        // commit index; the read waits for that (the empty entry appended at election).
        guard log.termOrZero(at: log.committed) == term else {
            leaderState.reads.waitingForCommit.append(ReadIndexQueue.WaitingRead(requester: requester, context: context))
            return
        }
        // Step 2: the read index is the commit index now. Step 3: a heartbeat round
        // acknowledged by a majority shows no newer leader existed when it was taken.
        let round = leaderState.reads.add(index: log.committed, requester: requester, context: context)
        leaderState.progress[id]?.readRoundAcked = round
        if membership.current.voters == [id] {
            releaseConfirmedReads()
            return
        }
        broadcastHeartbeat()
    }

    /// Answers every read whose round a majority of voters has acknowledged.
    mutating func releaseConfirmedReads() {
        guard !leaderState.reads.pending.isEmpty else { return }
        let confirmed = leaderState.quorumReadRound(voters: membership.current.voters)
        for read in leaderState.reads.release(upTo: confirmed) {
            if read.requester == id {
                readStates.append(ReadState(index: read.index, context: read.context))
            } else {
                send(to: read.requester, .readIndexResponse(ReadIndexResponse(index: read.index, context: read.context)))
            }
        }
    }
}
