/// The Raft consensus algorithm as a pure state machine, in the style of etcd raft's `RawNode`:
/// it never touches a clock, a disk or a socket. The driver feeds it ticks (`tick()`), messages
/// from peers (`step(_:)`) and requests (`propose(_:)`, `readIndex(context:)`, ...), then takes
/// the resulting I/O with `ready()`, performs it, and acknowledges it with `advance(_:)`.
///
/// It implements leader election with randomized timeouts, pre-vote and check-quorum; log
/// replication with batching, pipelining and fast back-off; snapshots sent in chunks;
/// single-server membership changes with learners; leadership transfer; and linearizable reads
/// through ReadIndex. Section numbers in comments refer to the Raft paper (Ongaro & Ousterhout,
/// 2014) and Ongaro's thesis (2014).
public struct RaftCore {
    /// This node's id.
    public let id: NodeID
    let config: RaftConfig
    var log: RaftLog
    /// The latest term this node has seen (paper Figure 2, currentTerm).
    public internal(set) var term: UInt64
    /// Whom this node voted for in `term`, or zero (paper Figure 2, votedFor).
    var vote: NodeID
    /// The leader of `term` as far as this node knows, or zero.
    public internal(set) var leader: NodeID
    var roleState: RoleState
    var membership: MembershipLog
    var electionElapsedTicks = 0
    var randomizedElectionTimeoutTicks = 0
    var random: any RandomNumberGenerator
    /// Messages waiting for the next `Ready`.
    var outbox: [Message] = []
    /// Confirmed reads waiting for the next `Ready`.
    var readStates: [ReadState] = []
    /// A snapshot being received in chunks.
    var snapshotReception: SnapshotReception?
    /// What the application last persisted, to tell whether the hard state changed.
    var persistedHardState: HardState
    var reportedSoftState: SoftState
    /// Set between `ready()` and `advance(_:)`.
    var readyInProgress = false
    /// The last entry a leader's `advance(_:durable:)` took before the disk confirmed it, until
    /// `persisted(through:)` does; nil while every stable entry is durable.
    var undurableTail: LogPosition?
    /// While `undurableTail` is set: how far the disk has confirmed this node's log.
    var durableIndex: UInt64 = 0

    /// Starts (or restarts) a node from what `storage` holds.
    ///
    /// - Parameters:
    ///   - config: timeouts and limits; `config.id` names this node.
    ///   - storage: the persisted log; for a new group, `MemoryStorage(bootstrap:)` with the
    ///     initial members.
    ///   - random: the source of election timeout jitter; inject a seeded generator to make
    ///     runs reproducible.
    ///   - appliedIndex: how far the application's state already reflects the log, if beyond
    ///     the snapshot (for state machines that persist themselves).
    public init(config: RaftConfig, storage: any LogStorage, random: any RandomNumberGenerator,
                appliedIndex: UInt64 = 0) {
        config.validate()
        self.id = config.id
        self.config = config
        let hardState = storage.hardState
        self.log = RaftLog(storage: storage, committed: hardState.commit, applied: appliedIndex)
        self.term = hardState.term
        self.vote = hardState.vote
        self.leader = 0
        self.roleState = .follower
        self.random = random
        self.persistedHardState = hardState
        self.reportedSoftState = SoftState(leader: 0, role: .follower)
        // The membership is the snapshot's, then every configuration entry after it (thesis
        // §4.1): read them all once.
        self.membership = MembershipLog(snapshot: storage.snapshotMetadata)
        var nextIndex = storage.firstIndex
        while nextIndex <= storage.lastIndex {
            let batch: [Entry]
            do {
                batch = try storage.entries(from: nextIndex, upTo: storage.lastIndex + 1, maxBytes: 1 << 24)
            } catch {
                preconditionFailure("cannot read the persisted log at \(nextIndex): \(error)")
            }
            for entry in batch where entry.kind == .configChange { membership.record(entry) }
            nextIndex += UInt64(batch.count)
        }
        resetRandomizedElectionTimeout()
    }

    // MARK: - Roles

    /// The role and what only that role keeps (etcd raft keeps these in one struct; here each
    /// role owns its state).
    enum RoleState {
        case follower
        case preCandidate(votes: [NodeID: Bool])
        case candidate(votes: [NodeID: Bool])
        case leader(LeaderState)
    }

    /// This node's role.
    public var role: RaftRole {
        switch roleState {
        case .follower: .follower
        case .preCandidate: .preCandidate
        case .candidate: .candidate
        case .leader: .leader
        }
    }

    /// Whether this node leads the group.
    public var isLeader: Bool {
        if case .leader = roleState { return true }
        return false
    }

    /// The leader's state, modified in place: the role is parked while the caller holds it so
    /// that the progress map is not copied on every change.
    var leaderState: LeaderState {
        get {
            guard case .leader(let state) = roleState else { preconditionFailure("\(id) is not the leader") }
            return state
        }
        _modify {
            // Move the state out rather than copy it: swapping leaves nothing behind to share
            // its storage with, so changes through `state` never copy the progress map.
            var taken = RoleState.follower
            swap(&taken, &roleState)
            guard case .leader(var state) = consume taken else { preconditionFailure("\(id) is not the leader") }
            defer { roleState = .leader(state) }
            yield &state
        }
    }

    /// The current membership: the latest in the log (thesis §4.1).
    public var confState: ConfState { membership.current }

    /// Whether this node may become leader: only voters campaign.
    var isPromotable: Bool { membership.current.voters.contains(id) }

    var hardState: HardState { HardState(term: term, vote: vote, commit: log.committed) }
    var softState: SoftState { SoftState(leader: leader, role: role) }

    mutating func becomeFollower(term newTerm: UInt64, leader newLeader: NodeID) {
        reset(term: newTerm)
        roleState = .follower
        leader = newLeader
    }

    /// Asks for pre-votes without raising the term (thesis §9.6).
    mutating func becomePreCandidate() {
        precondition(!isLeader, "a leader cannot become a pre-candidate")
        roleState = .preCandidate(votes: [:])
        leader = 0
    }

    mutating func becomeCandidate() {
        precondition(!isLeader, "a leader cannot become a candidate")
        reset(term: term + 1)
        vote = id
        roleState = .candidate(votes: [:])
    }

    mutating func becomeLeader() {
        guard case .candidate = roleState else { preconditionFailure("only a candidate becomes leader") }
        reset(term: term)
        leader = id
        roleState = .leader(LeaderState(
            membership: membership.current, selfID: id, lastIndex: log.lastIndex,
            selfPersistedIndex: selfDurableIndex, maxInflight: config.maxInflightAppends))
        // An empty entry of the new term: committing it commits everything before it (§5.4.2)
        // and tells the leader its commit index is current (thesis §6.4).
        appendAsLeader([Entry(term: term, index: 0)])
    }

    private mutating func reset(term newTerm: UInt64) {
        if newTerm != term {
            precondition(newTerm > term, "term going backwards from \(term) to \(newTerm)")
            term = newTerm
            vote = 0
        }
        leader = 0
        electionElapsedTicks = 0
        resetRandomizedElectionTimeout()
    }

    mutating func resetRandomizedElectionTimeout() {
        let spread = UInt64(config.electionTimeoutTicks)
        randomizedElectionTimeoutTicks = config.electionTimeoutTicks + Int(random.next() % spread)
    }

    // MARK: - Time

    /// Advances time by one tick: followers and candidates may start an election; a leader
    /// sends heartbeats and checks that it still hears from a quorum.
    public mutating func tick() {
        if isLeader {
            tickLeader()
        } else {
            tickElection()
        }
    }

    private mutating func tickElection() {
        electionElapsedTicks += 1
        if isPromotable && electionElapsedTicks >= randomizedElectionTimeoutTicks {
            electionElapsedTicks = 0
            campaign()
        }
    }

    private mutating func tickLeader() {
        electionElapsedTicks += 1
        leaderState.heartbeatElapsedTicks += 1
        if electionElapsedTicks >= config.electionTimeoutTicks {
            electionElapsedTicks = 0
            // Check-quorum (thesis §6.2): a leader that has not heard from a majority for an
            // election timeout steps down, so a partitioned leader stops serving reads and
            // stops blocking its followers' pre-votes.
            if !leaderState.quorumRecentlyActive(voters: membership.current.voters, selfID: id) {
                becomeFollower(term: term, leader: 0)
                return
            }
            leaderState.markAllInactive(except: id)
            // A transfer that has not finished within an election timeout has failed
            // (thesis §3.10).
            leaderState.transferTarget = 0
        }
        if leaderState.heartbeatElapsedTicks >= config.heartbeatIntervalTicks {
            leaderState.heartbeatElapsedTicks = 0
            broadcastHeartbeat()
        }
    }
}
