import Foundation
import TestSupport
import Testing

/// `GET /v1/status` is answered from the answer kept for the state it was computed from
/// (`StateAnswerCache`): each change must show at once, and what the operation checks in a
/// request (its `Accept`, its query) must still be checked.
@Suite(.dedicatedThread, .serialized, .timeLimit(.minutes(10))) struct StatusAnswerTests {  // the limit also covers waiting for a dedicated-thread slot under the full suite
    struct Status: Decodable {
        struct Node: Decodable { var name: String; var status: String }
        var index: Int
        var nodes: [Node]
    }

    @Test func everyChangeShowsInTheNextAnswer() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        for step in ["drain", "undrain", "ineligible", "eligible"] {
            // Asked twice, so that the second is answered from what the first kept.
            let before = try Self.status(agent)
            _ = try Self.status(agent)
            let change: [String] = switch step {
            case "drain": ["nodes", "drain", agent.nodeName]
            case "undrain": ["nodes", "drain", agent.nodeName, "--disable"]
            case "ineligible": ["nodes", "eligibility", agent.nodeName, "off"]
            default: ["nodes", "eligibility", agent.nodeName, "on"]
            }
            let ran = try agent.runDeployctl(change)
            #expect(ran.status == 0, "\(change): \(ran.error)")
            let after = try Self.status(agent)
            let expected = ["drain": "draining", "undrain": "ready", "ineligible": "ineligible", "eligible": "ready"][step]
            #expect(after.decoded.nodes.first?.status == expected, "after \(step): \(after.body)")
            #expect(after.decoded.index > before.decoded.index, "after \(step): index \(after.decoded.index), before \(before.decoded.index)")
            #expect(after.indexHeader == String(after.decoded.index))
        }
    }

    @Test func aKeptAnswerStillChecksAcceptAndQuery() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        _ = try Self.status(agent)
        _ = try Self.status(agent)
        let refused = try UnixHTTP.exchange("GET", "/v1/status", headers: ["Accept": "text/plain"], socket: agent.socket)
        #expect(refused.status == 406, "Accept: text/plain answered \(refused.status): \(refused.body)")
        let json = try UnixHTTP.exchange("GET", "/v1/status", headers: ["Accept": "application/json"], socket: agent.socket)
        #expect(json.status == 200)
        // Two Accept lines, the second allowing JSON, are served and kept; the first line alone
        // is still refused (headers are sent in the order written).
        let twoLines = try UnixHTTP.exchange("GET", "/v1/status", headers: ["Accept": "text/plain", "accept": "application/json"], socket: agent.socket)
        #expect(twoLines.status == 200, "\(twoLines.status): \(twoLines.body)")
        let firstLine = try UnixHTTP.exchange("GET", "/v1/status", headers: ["Accept": "text/plain"], socket: agent.socket)
        #expect(firstLine.status == 406, "\(firstLine.status): \(firstLine.body)")
        // A blocking query at the kept answer's index waits for a change (here, its whole
        // second): a query is the operation's to answer, never the kept bytes'.
        let kept = try Self.status(agent)
        let start = ContinuousClock.now
        let blocking = try UnixHTTP.exchange("GET", "/v1/status?index=\(kept.decoded.index)&wait=1s", socket: agent.socket)
        #expect(blocking.status == 200 && ContinuousClock.now - start >= .milliseconds(900), "answered \(blocking.status) after \(ContinuousClock.now - start)")
    }

    private static func status(_ agent: DevAgent) throws -> (decoded: Status, body: String, indexHeader: String?) {
        let answer = try UnixHTTP.exchange("GET", "/v1/status", socket: agent.socket)
        guard answer.status == 200 else { throw TestFailure("GET /v1/status answered \(answer.status): \(answer.body)") }
        return (try JSONDecoder().decode(Status.self, from: Data(answer.body.utf8)), answer.body, answer.headers["x-flotilla-index"])
    }
}
