/// A message between two members of a Raft group: the RPCs of the Raft paper (§5) and thesis
/// (pre-vote §9.6, TimeoutNow §3.10, ReadIndex §6.4), shaped like etcd raft's `raftpb.Message`
/// but with one case per kind so that each carries only its own fields.
///
/// The core never sends anything itself: it returns messages in `Ready.messages`, to be sent
/// only once that `Ready` has been persisted.
public struct Message: Sendable, Hashable {
    /// The sender.
    public var from: NodeID
    /// The receiver.
    public var to: NodeID
    /// The sender's term; for a pre-vote request, the term the sender would campaign in
    /// (thesis §9.6), which the receiver does not adopt.
    public var term: UInt64
    /// What kind of message this is, with its fields.
    public var payload: Payload

    /// Creates a message.
    public init(from: NodeID, to: NodeID, term: UInt64, payload: Payload) {
        self.from = from
        self.to = to
        self.term = term
        self.payload = payload
    }

    /// The kinds of message, each with its fields.
    public enum Payload: Sendable, Hashable {
        /// Would you vote for me in `term`? Sent before a real election so that a node that
        /// cannot win does not disrupt the group by raising terms (thesis §9.6).
        case preVote(VoteRequest)
        /// Answer to `preVote`; when granted, `term` is the proposed term.
        case preVoteResponse(VoteResponse)
        /// RequestVote (paper §5.2, Figure 2).
        case vote(VoteRequest)
        /// Answer to `vote`.
        case voteResponse(VoteResponse)
        /// AppendEntries with entries (paper §5.3), also how a follower learns the commit index.
        case append(AppendRequest)
        /// Answer to `append`: accepted up to an index, or rejected with a hint (paper §5.3).
        case appendResponse(AppendResponse)
        /// An empty AppendEntries that asserts leadership (paper §5.2) and confirms read rounds
        /// (thesis §6.4).
        case heartbeat(Heartbeat)
        /// Answer to `heartbeat`.
        case heartbeatResponse(HeartbeatResponse)
        /// One piece of an InstallSnapshot (paper §7, Figure 13: offset, data, done).
        case snapshotChunk(SnapshotChunk)
        /// Acknowledges the snapshot bytes received so far, so the leader sends the next piece.
        case snapshotChunkResponse(SnapshotChunkResponse)
        /// Start an election now, skipping pre-vote: the end of a leadership transfer
        /// (thesis §3.10).
        case timeoutNow
        /// A follower asks the leader for a read index on behalf of a local read (thesis §6.4.1).
        case readIndex(ReadIndexRequest)
        /// The leader's confirmed read index for a forwarded read.
        case readIndexResponse(ReadIndexResponse)
    }
}

/// The fields of a vote or pre-vote request.
public struct VoteRequest: Sendable, Hashable {
    /// Index of the candidate's last log entry (paper Figure 2, lastLogIndex).
    public var lastLogIndex: UInt64
    /// Term of the candidate's last log entry (paper Figure 2, lastLogTerm).
    public var lastLogTerm: UInt64
    /// Set when the election follows a TimeoutNow, so that receivers vote even though they
    /// have heard from a leader recently (thesis §3.10, §4.2.3).
    public var leadershipTransfer: Bool

    /// Creates a vote request.
    public init(lastLogIndex: UInt64, lastLogTerm: UInt64, leadershipTransfer: Bool = false) {
        self.lastLogIndex = lastLogIndex
        self.lastLogTerm = lastLogTerm
        self.leadershipTransfer = leadershipTransfer
    }
}

/// The answer to a vote or pre-vote request.
public struct VoteResponse: Sendable, Hashable {
    /// Whether the vote is granted.
    public var granted: Bool

    /// Creates a vote response.
    public init(granted: Bool) {
        self.granted = granted
    }
}

/// The fields of an AppendEntries request (paper Figure 2).
public struct AppendRequest: Sendable, Hashable {
    /// Index of the entry just before `entries`.
    public var prevLogIndex: UInt64
    /// Term of the entry at `prevLogIndex`.
    public var prevLogTerm: UInt64
    /// Consecutive entries starting at `prevLogIndex + 1`; empty for a probe.
    public var entries: [Entry]
    /// The leader's commit index.
    public var commit: UInt64

    /// Creates an append request.
    public init(prevLogIndex: UInt64, prevLogTerm: UInt64, entries: [Entry] = [], commit: UInt64) {
        self.prevLogIndex = prevLogIndex
        self.prevLogTerm = prevLogTerm
        self.entries = entries
        self.commit = commit
    }
}

/// The answer to an AppendEntries request.
public struct AppendResponse: Sendable, Hashable {
    /// When accepted, the index up to which the follower's log now matches the leader's;
    /// when rejected, the `prevLogIndex` that did not match.
    public var index: UInt64
    /// Whether the follower's log did not contain `prevLogIndex` with `prevLogTerm`.
    public var rejected: Bool
    /// When rejected: the last index at or before `index` whose term is at most the leader's
    /// `prevLogTerm`, so the leader can skip a whole term per round trip instead of one entry
    /// (paper §5.3's optimisation, as etcd raft's `findConflictByTerm` does).
    public var hintIndex: UInt64
    /// When rejected: the follower's term at `hintIndex` (zero if unknown).
    public var hintTerm: UInt64

    /// Creates an append response.
    public init(index: UInt64, rejected: Bool = false, hintIndex: UInt64 = 0, hintTerm: UInt64 = 0) {
        self.index = index
        self.rejected = rejected
        self.hintIndex = hintIndex
        self.hintTerm = hintTerm
    }
}

/// The fields of a heartbeat.
public struct Heartbeat: Sendable, Hashable {
    /// The leader's commit index, capped at what the receiver is known to hold (etcd raft),
    /// so that a follower never learns a commit index beyond its own log.
    public var commit: UInt64
    /// The latest read round the leader wants confirmed (thesis §6.4 step 3); zero if none.
    public var readRound: UInt64

    /// Creates a heartbeat.
    public init(commit: UInt64, readRound: UInt64 = 0) {
        self.commit = commit
        self.readRound = readRound
    }
}

/// The answer to a heartbeat.
public struct HeartbeatResponse: Sendable, Hashable {
    /// The read round of the heartbeat being answered.
    public var readRound: UInt64

    /// Creates a heartbeat response.
    public init(readRound: UInt64 = 0) {
        self.readRound = readRound
    }
}

/// One piece of a snapshot sent to a follower whose next entry the leader has compacted
/// (paper §7, Figure 13).
public struct SnapshotChunk: Sendable, Hashable {
    /// Where the snapshot stands in the log and the membership there.
    public var metadata: SnapshotMetadata
    /// Where `data` starts within the snapshot's bytes.
    public var offset: UInt64
    /// The size of the whole snapshot's data.
    public var totalBytes: UInt64
    /// The bytes `offset ..< offset + data.count` of the snapshot's data.
    public var data: [UInt8]

    /// Whether this chunk ends the snapshot (paper Figure 13's `done`).
    public var isLast: Bool { offset + UInt64(data.count) == totalBytes }

    /// Creates a snapshot chunk.
    public init(metadata: SnapshotMetadata, offset: UInt64, totalBytes: UInt64, data: [UInt8]) {
        self.metadata = metadata
        self.offset = offset
        self.totalBytes = totalBytes
        self.data = data
    }
}

/// Acknowledges snapshot bytes; the leader sends the chunk that starts at `receivedBytes`.
public struct SnapshotChunkResponse: Sendable, Hashable {
    /// The index of the snapshot being received.
    public var snapshotIndex: UInt64
    /// How many bytes of it the follower holds, contiguously from the start.
    public var receivedBytes: UInt64

    /// Creates a snapshot chunk response.
    public init(snapshotIndex: UInt64, receivedBytes: UInt64) {
        self.snapshotIndex = snapshotIndex
        self.receivedBytes = receivedBytes
    }
}

/// A read forwarded by a follower to the leader.
public struct ReadIndexRequest: Sendable, Hashable {
    /// The application's identifier for the read, returned in the `ReadState`.
    public var context: [UInt8]

    /// Creates a read index request.
    public init(context: [UInt8]) {
        self.context = context
    }
}

/// The leader's answer to a forwarded read.
public struct ReadIndexResponse: Sendable, Hashable {
    /// The commit index when the read arrived, confirmed by a quorum since.
    public var index: UInt64
    /// The application's identifier for the read.
    public var context: [UInt8]

    /// Creates a read index response.
    public init(index: UInt64, context: [UInt8]) {
        self.index = index
        self.context = context
    }
}
