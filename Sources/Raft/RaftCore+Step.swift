extension RaftCore {
    /// Handles a message from a peer. Throws when the message is not for this node or breaks
    /// the protocol; messages that are merely stale are dropped silently.
    public mutating func step(_ message: Message) throws(RaftError) {
        guard message.to == id else { throw .misaddressed(to: message.to) }
        try validate(message)

        if message.term > term {
            switch message.payload {
            case .preVote(let request), .vote(let request):
                // A node that heard from a leader within the election timeout ignores
                // campaigns, so that a node that was cut off (or removed) cannot depose a
                // healthy leader; a transfer is the exception (thesis §4.2.3, §3.10).
                let inLease = leader != 0 && electionElapsedTicks < config.electionTimeoutTicks
                if inLease && !request.leadershipTransfer { return }
            default:
                break
            }
            switch message.payload {
            case .preVote:
                // Never adopt the term of a pre-vote: the sender has not raised its own (thesis §9.6).
                break
            case .preVoteResponse(let response) where response.granted:
                // Granted pre-votes carry the term we would campaign in.
                break
            case .append, .heartbeat, .snapshotChunk:
                becomeFollower(term: message.term, leader: message.from)
            default:
                becomeFollower(term: message.term, leader: 0)
            }
        } else if message.term < term {
            switch message.payload {
            case .append, .heartbeat:
                // A stale leader, perhaps back from a partition: tell it the term so it steps
                // down. With check-quorum and pre-vote it would otherwise never learn, since
                // we ignore its traffic and nobody campaigns against it (etcd raft).
                send(to: message.from, .appendResponse(AppendResponse(index: 0)))
            case .preVote:
                send(to: message.from, .preVoteResponse(VoteResponse(granted: false)))
            default:
                break
            }
            return
        }

        switch message.payload {
        case .preVote(let request):
            handleVoteRequest(message, request, isPreVote: true)
        case .vote(let request):
            handleVoteRequest(message, request, isPreVote: false)
        default:
            switch roleState {
            case .leader: stepLeader(message)
            case .preCandidate, .candidate: stepCandidate(message)
            case .follower: stepFollower(message)
            }
        }
    }

    mutating func stepFollower(_ message: Message) {
        switch message.payload {
        case .append(let request):
            heardFromLeader(message.from)
            handleAppend(from: message.from, request)
        case .heartbeat(let heartbeat):
            heardFromLeader(message.from)
            handleHeartbeat(from: message.from, heartbeat)
        case .snapshotChunk(let chunk):
            heardFromLeader(message.from)
            handleSnapshotChunk(from: message.from, chunk)
        case .timeoutNow:
            handleTimeoutNow(from: message.from)
        case .readIndexResponse(let response):
            readStates.append(ReadState(index: response.index, context: response.context))
        default:
            break
        }
    }

    mutating func stepCandidate(_ message: Message) {
        switch message.payload {
        case .append, .heartbeat, .snapshotChunk:
            // A leader exists in our term: we lost (paper §5.2).
            becomeFollower(term: message.term, leader: message.from)
            stepFollower(message)
        case .preVoteResponse(let response):
            guard case .preCandidate = roleState else { return }
            // Granted answers carry the proposed term, refusals our current one.
            guard message.term == (response.granted ? term + 1 : term) else { return }
            recordVote(from: message.from, granted: response.granted)
        case .voteResponse(let response):
            guard case .candidate = roleState else { return }
            recordVote(from: message.from, granted: response.granted)
        default:
            break
        }
    }

    mutating func stepLeader(_ message: Message) {
        // Any answer shows the follower is alive and still follows us (thesis §6.2).
        leaderState.progress[message.from]?.recentActive = true
        switch message.payload {
        case .appendResponse(let response):
            handleAppendResponse(from: message.from, response)
        case .heartbeatResponse(let response):
            handleHeartbeatResponse(from: message.from, response)
        case .snapshotChunkResponse(let response):
            handleSnapshotChunkResponse(from: message.from, response)
        case .readIndex(let request):
            handleReadRequest(from: message.from, context: request.context)
        default:
            break
        }
    }

    mutating func heardFromLeader(_ from: NodeID) {
        electionElapsedTicks = 0
        leader = from
    }

    mutating func send(to: NodeID, term messageTerm: UInt64? = nil, _ payload: Message.Payload) {
        outbox.append(Message(from: id, to: to, term: messageTerm ?? term, payload: payload))
    }

    /// Rejects messages whose contents would break the core's invariants: they can only come
    /// from a broken or malicious peer.
    func validate(_ message: Message) throws(RaftError) {
        guard message.from != 0, message.from != id else {
            throw .invalidMessage("bad sender \(message.from)")
        }
        switch message.payload {
        case .append(let request):
            guard request.prevLogTerm <= message.term else {
                throw .invalidMessage("prevLogTerm \(request.prevLogTerm) above term \(message.term)")
            }
            var previousTerm = request.prevLogTerm
            for (offset, entry) in request.entries.enumerated() {
                guard entry.index == request.prevLogIndex + UInt64(offset) + 1,
                      entry.term >= previousTerm, entry.term <= message.term else {
                    throw .invalidMessage("entry \(entry.term)/\(entry.index) out of sequence")
                }
                previousTerm = entry.term
            }
        case .snapshotChunk(let chunk):
            guard chunk.metadata.index > 0, chunk.metadata.term > 0, chunk.metadata.term <= message.term,
                  chunk.offset <= chunk.totalBytes,
                  UInt64(chunk.data.count) <= chunk.totalBytes - chunk.offset else {
                throw .invalidMessage("malformed snapshot chunk")
            }
        case .preVote(let request), .vote(let request):
            guard request.lastLogTerm <= message.term else {
                throw .invalidMessage("last log term above the campaign's term")
            }
        default:
            break
        }
    }
}
