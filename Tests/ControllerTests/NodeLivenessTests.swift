import Testing

@testable import Controller

/// Heartbeats in the leader's memory: only transitions come out, a new leader gives everyone
/// a fresh ttl, and a node back from silence comes up.
@Suite struct NodeLivenessTests {
    let start = ContinuousClock.now

    func at(_ seconds: Double) -> NodeLiveness.Instant { start + .milliseconds(Int64(seconds * 1000)) }

    @Test func steadyHeartbeatsCommitNothing() {
        var liveness = NodeLiveness(ttl: .seconds(10))
        liveness.becameLeader(at: at(0), nodes: ["a", "b"])
        for second in 1...100 {
            liveness.heard(from: "a", at: at(Double(second)))
            liveness.heard(from: "b", at: at(Double(second)))
            #expect(liveness.transitions(committed: ["a": false, "b": false], at: at(Double(second))).isEmpty)
        }
    }

    @Test func aNodeSilentPastTheTTLGoesDownOnceAndComesBackUp() {
        var liveness = NodeLiveness(ttl: .seconds(10))
        liveness.becameLeader(at: at(0), nodes: ["a", "b"])
        liveness.heard(from: "a", at: at(5))
        liveness.heard(from: "b", at: at(5))
        #expect(liveness.transitions(committed: ["a": false, "b": false], at: at(15)).isEmpty, "exactly the ttl is not past it")
        liveness.heard(from: "a", at: at(15))
        #expect(liveness.transitions(committed: ["a": false, "b": false], at: at(15.5)) == [.down(node: "b")])
        // Committed down: nothing more to say about it while it stays silent.
        #expect(liveness.transitions(committed: ["a": false, "b": true], at: at(20)).isEmpty)
        liveness.heard(from: "b", at: at(21))
        #expect(liveness.transitions(committed: ["a": false, "b": true], at: at(21)) == [.up(node: "b")])
        #expect(liveness.transitions(committed: ["a": false, "b": false], at: at(25.5)) == [.down(node: "a")])
    }

    @Test func aNewLeaderGivesEveryNodeAFreshTTL() {
        var liveness = NodeLiveness(ttl: .seconds(10))
        liveness.becameLeader(at: at(0), nodes: ["a"])
        // Long silence under the old leader does not count against the node under the new one.
        liveness.becameLeader(at: at(100), nodes: ["a", "b"])
        #expect(liveness.transitions(committed: ["a": false, "b": false], at: at(105)).isEmpty)
        #expect(liveness.transitions(committed: ["a": false, "b": false], at: at(110.5)) == [.down(node: "a"), .down(node: "b")])
    }

    /// A node down under the old leader stays down under a new one until it beats again: the
    /// grace a new leader gives keeps up nodes up, and does not bring down ones back (which
    /// would make a dead node eligible for placements until its grace ran out).
    @Test func aNewLeadersGraceDoesNotBringADownNodeBack() {
        var liveness = NodeLiveness(ttl: .seconds(10))
        liveness.becameLeader(at: at(100), nodes: ["a", "dead"])
        #expect(liveness.transitions(committed: ["a": false, "dead": true], at: at(101)).isEmpty)
        liveness.startGrace(for: "late", at: at(102))
        #expect(liveness.transitions(committed: ["a": false, "dead": true, "late": true], at: at(103)).isEmpty)
        liveness.heard(from: "dead", at: at(104))
        #expect(liveness.transitions(committed: ["a": false, "dead": true, "late": true], at: at(104)) == [.up(node: "dead")])
    }

    @Test func unknownNodesGetNoVerdictUntilTheirGraceStarts() {
        var liveness = NodeLiveness(ttl: .seconds(10))
        liveness.becameLeader(at: at(0), nodes: ["a"])
        #expect(liveness.transitions(committed: ["a": false, "late": false], at: at(50)) == [.down(node: "a")])
        #expect(liveness.unknown(among: ["a", "late"]) == ["late"])
        liveness.startGrace(for: "late", at: at(50))
        liveness.forget("a")
        #expect(liveness.transitions(committed: ["a": false, "late": false], at: at(55)).isEmpty)
        // A heartbeat that arrives out of order does not move the clock back.
        liveness.heard(from: "late", at: at(40))
        #expect(liveness.lastHeard(from: "late") == at(50))
    }
}
