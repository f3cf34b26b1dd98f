/// The log a brand-new group starts from: one committed membership entry per initial member,
/// in term 1 (etcd raft's `RawNode.Bootstrap`). The membership lives in the log rather than
/// only in each node's local state, so a server that joins later and receives the log from its
/// start computes the same membership as everyone else (thesis §4.1).
///
/// Every initial member must start from the same bootstrap log; a server joining an existing
/// group starts empty (`ConfState()`) and is then added by a `ConfChange`.
public struct BootstrapLog: Sendable, Hashable {
    /// `addVoter` for each voter, then `addLearner` for each learner, in id order.
    public let entries: [Entry]
    /// Term 1, no vote, everything committed.
    public let hardState: HardState

    /// The bootstrap log for a group whose initial members are `members`; empty for none.
    public init(members: ConfState) {
        let changes = members.voters.sorted().map { ConfChange(.addVoter, $0) }
            + members.learners.sorted().map { ConfChange(.addLearner, $0) }
        entries = changes.enumerated().map { offset, change in
            Entry(term: 1, index: UInt64(offset) + 1, kind: .configChange, data: change.encoded())
        }
        hardState = changes.isEmpty ? HardState() : HardState(term: 1, vote: 0, commit: UInt64(changes.count))
    }
}
