/// What the application must do for the core, handed out by `RaftCore.ready()`: the I/O the
/// core decided on but never performs (etcd raft's `Ready`).
///
/// Handle it in this order, then call `RaftCore.advance(_:)`:
/// 1. if `snapshot` is set: persist it and restore the state machine from it;
/// 2. persist `entries` (replacing any stored entries from the first one's index on) and
///    `hardState`; sync to disk if `mustSync`;
/// 3. send `messages` (only now: they promise what was just persisted), unless
///    `messagesMayPrecedePersist` lets them go first;
/// 4. apply `committedEntries` in order, and serve `readStates` once applied up to their index.
///    Those before the first of `entries` were made durable by an earlier `Ready`: they may be
///    applied while step 2's writes are on their way to the disk.
///
/// A `Ready` whose `messagesMayPrecedePersist` is true may be advanced as soon as its writes are
/// submitted, without waiting for the sync (`RaftCore.advance(_:durable: false)`, then
/// `RaftCore.persisted(through:)` once synced); every committed entry may then be applied.
public struct Ready: Sendable {
    /// Leader and role, when they changed since the last `Ready`.
    public var softState: SoftState?
    /// The hard state to persist, when it changed.
    public var hardState: HardState?
    /// Entries to persist.
    public var entries: [Entry]
    /// A snapshot received from the leader, to persist and install.
    public var snapshot: Snapshot?
    /// Entries committed and not yet applied.
    public var committedEntries: [Entry]
    /// Messages to send once the rest is persisted (or at once: `messagesMayPrecedePersist`).
    public var messages: [Message]
    /// Confirmed reads.
    public var readStates: [ReadState]
    /// Whether the writes must reach the disk before the messages go out: false when only the
    /// commit index changed, which is recoverable (etcd raft's `MustSync`).
    public var mustSync: Bool
    /// Whether `messages` may go before the writes are durable, so that the followers write
    /// in parallel with the leader (thesis §10.2.1): true for a leader whose term and vote
    /// did not change since the last `Ready` and which received no snapshot. Its messages are
    /// then appends, heartbeats and the like, which promise nothing about its own disk: it
    /// counts itself toward a majority only for what it has persisted.
    public var messagesMayPrecedePersist: Bool
}

/// The role of a node, for status and logs.
public enum RaftRole: String, Sendable, Hashable {
    /// Follows a leader, or waits for one.
    case follower
    /// Asks whether it could win an election (thesis §9.6) without raising its term.
    case preCandidate = "pre-candidate"
    /// Campaigns for votes (paper §5.2).
    case candidate
    /// Leads the group.
    case leader
}

/// State the application may want to watch but need not persist.
public struct SoftState: Sendable, Hashable {
    /// The known leader, or zero.
    public var leader: NodeID
    /// This node's role.
    public var role: RaftRole
}

/// Where an entry was put in the log: it is committed when the entry at `index` with `term` is.
public struct LogPosition: Sendable, Hashable {
    /// The entry's index.
    public var index: UInt64
    /// The entry's term; if another entry ends up at `index`, this proposal was lost.
    public var term: UInt64

    /// Creates a log position.
    public init(index: UInt64, term: UInt64) {
        self.index = index
        self.term = term
    }
}
