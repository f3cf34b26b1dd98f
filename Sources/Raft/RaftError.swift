/// Why the core refused a request. Every case is an expected outcome the caller handles (retry
/// elsewhere, later, or report), never a bug: bugs are preconditions.
public enum RaftError: Error, Sendable, Hashable {
    /// Only the leader accepts this; `leaderHint` is the leader this node knows of, or zero.
    case notLeader(leaderHint: NodeID)
    /// A leadership transfer to `target` is under way; proposals wait until it ends (thesis §3.10).
    case leadershipTransferInProgress(target: NodeID)
    /// The previous membership change, at `index`, is not committed yet: one at a time
    /// (thesis §4.1).
    case confChangePending(index: UInt64)
    /// The leader has not yet committed an entry of its term, so its log may hold an
    /// uncommitted membership change from an earlier leader (the fix to single-server changes,
    /// Ongaro, raft-dev 2015).
    case leaderNotReady
    /// The leader already holds `bytes` of proposals it has not committed, and this one would
    /// take it past `limit` (`RaftConfig.maxUncommittedBytes`): retry once commits catch up.
    case tooManyUncommitted(bytes: Int, limit: Int)
    /// The learner must catch up before it can vote (thesis §4.2.1).
    case learnerNotCaughtUp(nodeID: NodeID, match: UInt64, required: UInt64)
    /// The change makes no sense for the current membership.
    case invalidConfChange(String)
    /// A leadership transfer must target a voter other than the leader.
    case invalidTransferTarget(NodeID)
    /// A snapshot may only be made at an index the application has applied and not compacted.
    case invalidSnapshotIndex(index: UInt64, firstIndex: UInt64, applied: UInt64)
    /// The message was meant for another node.
    case misaddressed(to: NodeID)
    /// The message breaks the protocol's rules; a peer is broken or malicious.
    case invalidMessage(String)
}

extension RaftError {
    /// Whether the same request may succeed a moment later without anything else changing:
    /// the leader is busy (a membership change or a leadership transfer in flight, its term
    /// not yet committed, too much uncommitted), rather than the request being wrong.
    public var isTransient: Bool {
        switch self {
        case .leadershipTransferInProgress, .confChangePending, .leaderNotReady, .tooManyUncommitted: true
        default: false
        }
    }
}
