/// Why a `RaftNode` request failed.
public enum RaftNodeError: Error, Sendable, Hashable, CustomStringConvertible {
    /// Only the leader takes proposals; retry at `leaderHint` (zero: no leader known yet).
    case notLeader(leaderHint: NodeID)
    /// The core refused the request for another reason.
    case rejected(RaftError)
    /// Another entry was committed at the proposal's index: a new leader overwrote it. Safe to
    /// retry.
    case proposalDropped(index: UInt64)
    /// A snapshot from the leader covered the proposal's index before this node saw the entry;
    /// it may or may not have been committed.
    case proposalOutcomeUnknown(index: UInt64)
    /// This node stopped leading (a newer term, or no quorum heard from: CheckQuorum) before
    /// the proposal at `index` committed. The next leader may or may not commit it.
    case leadershipLost(index: UInt64)
    /// The proposal at `index` was not applied by its deadline (a disk or a quorum too slow).
    /// It may still commit.
    case proposalTimedOut(index: UInt64)
    /// No confirmation of leadership came back in time (the leader changed, or a partition).
    /// Safe to retry.
    case readTimedOut
    /// The node was stopped.
    case stopped
    /// Storage failed; the node stopped itself, since it can no longer promise durability.
    case storageFailed(String)

    /// A message naming what to do next.
    public var description: String {
        switch self {
        case .notLeader(let hint):
            return hint == 0 ? "not the leader, and no leader is known yet; retry later" : "not the leader; retry at node \(hint)"
        case .rejected(let error):
            return "rejected by Raft: \(error)"
        case .proposalDropped(let index):
            return "proposal at index \(index) was replaced by a new leader's entry; retry"
        case .proposalOutcomeUnknown(let index):
            return "proposal at index \(index) was covered by a snapshot before it was seen; it may have been committed"
        case .leadershipLost(let index):
            return "this node lost its leadership before the proposal at index \(index) committed; the next leader may or may not commit it"
        case .proposalTimedOut(let index):
            return "the proposal at index \(index) was not committed by its deadline; it may still be"
        case .readTimedOut:
            return "the read barrier was not confirmed in time; retry"
        case .stopped:
            return "the Raft node is stopped"
        case .storageFailed(let reason):
            return "the Raft node stopped after a storage failure: \(reason)"
        }
    }
}
