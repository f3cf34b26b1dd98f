import AgentAPI
import Raft
import Testing

@testable import Agent

/// How the gateway turns what failed into the API's errors: a failure already in the API's
/// words keeps them. (A write forwarded to a leader that died answered 500 "internal" with a
/// 503 no_leader's message inside, so clients did not know to retry.)
@Suite struct GatewayErrorTests {
    @Test func anAPIErrorIsKeptAsItIs() {
        let forwarded = APIError(code: APIErrorCode.noLeader, message: "forwarding to the leader (node 1): the connection ended before it answered")
        let mapped = ClusterGateway.apiError(forwarded)
        #expect(mapped.code == APIErrorCode.noLeader && mapped.message == forwarded.message && mapped.httpStatus == 503)
    }

    @Test func raftAndCancellationErrorsAreNamed() {
        #expect(ClusterGateway.apiError(RaftNodeError.notLeader(leaderHint: 0)).code == APIErrorCode.noLeader)
        #expect(ClusterGateway.apiError(CancellationError()).code == APIErrorCode.timeout)
        // Neither is the server's fault, and either may still take effect: a 504 that says so.
        #expect(ClusterGateway.apiError(RaftNodeError.leadershipLost(index: 7)).code == APIErrorCode.timeout)
        let timedOut = ClusterGateway.apiError(RaftNodeError.proposalTimedOut(index: 9))
        #expect(timedOut.code == APIErrorCode.timeout && timedOut.message.contains("may still take effect"), "\(timedOut)")
    }
}
