/// A snapshot of a node's state for operators, tests and logs.
public struct RaftStatus: Sendable, Hashable {
    /// The node's id.
    public var id: NodeID
    /// Term, vote and commit index.
    public var hardState: HardState
    /// Leader and role.
    public var softState: SoftState
    /// The index the application has applied.
    public var applied: UInt64
    /// The first index still held as an entry.
    public var firstIndex: UInt64
    /// The last index of the log.
    public var lastIndex: UInt64
    /// The membership in force.
    public var confState: ConfState
    /// On a leader, every member's replication progress; empty otherwise.
    public var progress: [NodeID: PeerProgress]
    /// On a leader, the target of a leadership transfer under way, or zero.
    public var transferTarget: NodeID
}

/// The leader's view of one member.
public struct PeerProgress: Sendable, Hashable {
    /// The member's log matches the leader's up to here.
    public var match: UInt64
    /// The next index the leader will send.
    public var next: UInt64
    /// How the leader sends to it.
    public var state: ReplicationState
    /// Append messages in flight.
    public var inflightCount: Int
    /// Heard from since the last check-quorum round.
    public var recentActive: Bool
}

extension RaftCore {
    /// The node's state now.
    public var status: RaftStatus {
        var peers: [NodeID: PeerProgress] = [:]
        var transferTarget: NodeID = 0
        if case .leader(let state) = roleState {
            transferTarget = state.transferTarget
            for (peer, progress) in state.progress {
                peers[peer] = PeerProgress(match: progress.match, next: progress.next, state: progress.state,
                                           inflightCount: progress.inflights.count,
                                           recentActive: progress.recentActive)
            }
        }
        return RaftStatus(id: id, hardState: hardState, softState: softState, applied: log.applied,
                          firstIndex: log.firstIndex, lastIndex: log.lastIndex, confState: membership.current,
                          progress: peers, transferTarget: transferTarget)
    }

    /// The commit index.
    public var commitIndex: UInt64 { log.committed }
    /// The index the application has applied.
    public var appliedIndex: UInt64 { log.applied }
    /// The last index of the log.
    public var lastIndex: UInt64 { log.lastIndex }
}
