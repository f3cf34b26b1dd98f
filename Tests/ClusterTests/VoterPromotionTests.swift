import Testing

@testable import Cluster
@testable import Raft

/// Which learner a leader promotes: a caught-up one, lowest id first, while under five voters.
@Suite struct VoterPromotionTests {
    static func status(role: RaftRole = .leader, voters: Set<NodeID>, learners: [NodeID: UInt64], commit: UInt64 = 100) -> RaftStatus {
        var progress: [NodeID: PeerProgress] = [:]
        for (id, match) in learners {
            progress[id] = PeerProgress(match: match, next: match + 1, state: .replicate, inflightCount: 0, recentActive: true)
        }
        return RaftStatus(
            id: 1, hardState: HardState(term: 2, vote: 1, commit: commit), softState: SoftState(leader: 1, role: role), applied: commit,
            firstIndex: 1, lastIndex: commit, confState: ConfState(voters: voters, learners: Set(learners.keys)), progress: progress,
            transferTarget: 0)
    }

    @Test func aCaughtUpLearnerIsPromotedLowestIDFirst() {
        #expect(VoterPromotion.learnerToPromote(Self.status(voters: [1], learners: [7: 100, 4: 100, 5: 99])) == 4)
    }

    @Test func aLearnerBehindTheCommitIndexWaits() {
        #expect(VoterPromotion.learnerToPromote(Self.status(voters: [1, 2, 3], learners: [4: 99])) == nil)
    }

    @Test func pastFiveVotersFurtherServersStayLearners() {
        #expect(VoterPromotion.learnerToPromote(Self.status(voters: [1, 2, 3, 4], learners: [6: 100])) == 6)
        #expect(VoterPromotion.learnerToPromote(Self.status(voters: [1, 2, 3, 4, 5], learners: [6: 100])) == nil)
    }

    @Test func onlyALeaderPromotes() {
        #expect(VoterPromotion.learnerToPromote(Self.status(role: .follower, voters: [1], learners: [2: 100])) == nil)
    }
}
