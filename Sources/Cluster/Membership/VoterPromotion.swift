import Raft

/// When a leader promotes a server that joined as a learner (Consul's autopilot, etcd's
/// learners): once it holds everything committed, and only while the cluster has fewer than
/// `maximumVoters` voters. More voters make every commit wait for more disks and buy no
/// availability past five (two failures tolerated); further servers stay learners, ready to
/// replace a voter that is removed.
public enum VoterPromotion {
    public static let maximumVoters = 5

    /// The learner to promote now, if any: the caught-up one with the lowest id. Nil unless
    /// `status` is a leader's (only a leader knows its peers' progress).
    public static func learnerToPromote(_ status: RaftStatus, maximumVoters: Int = maximumVoters) -> NodeID? {
        guard status.softState.role == .leader, status.confState.voters.count < maximumVoters else { return nil }
        return status.confState.learners.sorted().first { learner in
            (status.progress[learner]?.match ?? 0) >= status.hardState.commit
        }
    }
}
