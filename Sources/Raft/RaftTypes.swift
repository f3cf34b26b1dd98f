/// Identifies a member of a Raft group. Zero is never a valid id: it means "none".
public typealias NodeID = UInt64

/// What an entry of the replicated log carries.
public enum EntryKind: UInt8, Sendable, Hashable, Codable {
    /// Application data (or the empty entry a new leader appends, with empty `data`).
    case normal = 0
    /// A membership change, encoded by the core; applied when committed.
    case configChange = 1
}

/// One entry of the replicated log.
public struct Entry: Sendable, Hashable {
    public var term: UInt64
    public var index: UInt64
    public var kind: EntryKind
    public var data: [UInt8]

    public init(term: UInt64, index: UInt64, kind: EntryKind = .normal, data: [UInt8] = []) {
        self.term = term
        self.index = index
        self.kind = kind
        self.data = data
    }
}

/// The state that must be on stable storage before any message that depends on it is sent
/// (Raft paper, Figure 2: currentTerm, votedFor; plus the commit index, as etcd-raft keeps it).
public struct HardState: Sendable, Hashable {
    public var term: UInt64
    /// Zero when this node has not voted in `term`.
    public var vote: NodeID
    public var commit: UInt64

    public init(term: UInt64 = 0, vote: NodeID = 0, commit: UInt64 = 0) {
        self.term = term
        self.vote = vote
        self.commit = commit
    }
}

/// The membership of the group at some point of the log.
public struct ConfState: Sendable, Hashable {
    public var voters: Set<NodeID>
    /// Non-voting members that receive the log but do not count toward a quorum.
    public var learners: Set<NodeID>

    public init(voters: Set<NodeID> = [], learners: Set<NodeID> = []) {
        self.voters = voters
        self.learners = learners
    }
}

/// Where a snapshot stands in the log, and the membership at that point.
public struct SnapshotMetadata: Sendable, Hashable {
    public var index: UInt64
    public var term: UInt64
    public var confState: ConfState

    public init(index: UInt64 = 0, term: UInt64 = 0, confState: ConfState = ConfState()) {
        self.index = index
        self.term = term
        self.confState = confState
    }
}

/// The application's state at `metadata.index`, as opaque bytes.
public struct Snapshot: Sendable, Hashable {
    public var metadata: SnapshotMetadata
    public var data: [UInt8]

    public init(metadata: SnapshotMetadata = SnapshotMetadata(), data: [UInt8] = []) {
        self.metadata = metadata
        self.data = data
    }
}
