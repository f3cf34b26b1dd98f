import AgentAPI
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Bad input to the API: every malformed body, oversized body and bad query value gets a 4xx in
/// the API's one error shape, changes nothing, and leaves the agent serving.
@Suite(.dedicatedThread, .serialized, .enabled(if: getuid() == 0, "needs root: agentd launches services"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct APIBadInputTests {
    struct BadRequest: CustomStringConvertible {
        var method: String
        var path: String
        var body: String?
        var description: String { "\(method) \(path) \(body.map { String($0.prefix(40)) } ?? "")" }
    }

    /// A batch manifest: 17 MiB of padding in a string field takes it past the 16 MiB limit.
    static func oversizedManifest() -> String {
        #"{"name": "huge", "services": [{"name": "x", "command": ["/bin/true"], "description": ""#
            + String(repeating: "a", count: 17 << 20) + #""}]}"#
    }

    @Test func badBodiesAndQueryValuesGetTheErrorShapeAndChangeNothing() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "manifests/batch.json", "--timeout", "60s").status == 0, "\(agent.agentLog())")
        let instance = try #require(try agent.get("/v1/instances?application=report", as: [InstanceInfo].self).first)
        let before = try agent.get("/v1/status", as: ClusterStatus.self)

        let service = "/v1/applications/report/services/checksum"
        var requests: [BadRequest] = []
        // Bodies: not JSON, not an object, empty, not UTF-8, the wrong types, too big.
        for body in ["{", "[]", "", "\u{FFFD}\u{0000}garbage", "null", #"{"name": 7}"#, Self.oversizedManifest()] {
            requests.append(BadRequest(method: "PUT", path: "/v1/applications/report", body: body))
        }
        for body in ["{", "[]", "", #"{"replicas": "two"}"#, #"{"replicas": -1}"#, #"{"replicas": 1.5}"#, "{}",
                     #"{"replicas": 99999999999999999999}"#, Self.oversizedManifest()] {
            requests.append(BadRequest(method: "POST", path: service + "/scale", body: body))
        }
        // Query values: indexes and counts that are not numbers, durations that are not
        // durations, booleans that are neither.
        for query in ["index=abc", "index=-1", "index=1&wait=forever", "index=1&wait=-5s", "consistent=maybe", "consistent=yes"] {
            requests.append(BadRequest(method: "GET", path: "/v1/status?" + query))
        }
        for query in ["tail=abc", "tail=-1", "tail=99999999999999999999", "since=yesterday", "follow=perhaps"] {
            requests.append(BadRequest(method: "GET", path: "/v1/instances/\(instance.id)/logs?" + query))
        }
        requests.append(BadRequest(method: "GET", path: "/v1/events?after=x"))
        requests.append(BadRequest(method: "GET", path: "/v1/events?stream=sometimes"))
        requests.append(BadRequest(method: "GET", path: "/v1/applications/report?detail=2"))
        requests.append(BadRequest(method: "PUT", path: "/v1/applications/report?revision=first", body: "{}"))
        requests.append(BadRequest(method: "DELETE", path: "/v1/applications/report?revision=-3"))

        for request in requests {
            let (status, body) = try UnixHTTP.request(request.method, request.path, body: request.body, socket: agent.socket)
            #expect((400..<500).contains(status), "\(request) answered \(status): \(body.prefix(300))")
            let error = try? JSONDecoder().decode(APIError.self, from: Data(body.utf8))
            #expect(error.map { !$0.code.isEmpty && !$0.message.isEmpty } == true, "\(request): not the error shape: \(body.prefix(300))")
        }
        let (status, answer) = try UnixHTTP.request("PUT", "/v1/applications/huge", body: Self.oversizedManifest(), socket: agent.socket)
        #expect(status == 413, "\(answer.prefix(300))")

        // Nothing changed, and the agent still serves.
        let after = try agent.get("/v1/status", as: ClusterStatus.self)
        #expect(after.applications.map(\.name) == before.applications.map(\.name))
        #expect(after.applications.map(\.revision) == before.applications.map(\.revision))
        #expect(try agent.get("/v1/instances?application=report", as: [InstanceInfo].self).count >= 1)
        #expect(try agent.deployctl("version").status == 0)
    }
}
