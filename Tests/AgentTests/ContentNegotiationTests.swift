import AgentAPI
import Foundation
import TestSupport
import Testing

/// What a request says it sends and accepts is checked against the document, and a mismatch
/// gets its own status in the API's error shape: 406 for an `Accept` the answer cannot meet,
/// 415 for a body of a content type the operation does not take, each said once.
@Suite(.dedicatedThread, .timeLimit(.minutes(10))) struct ContentNegotiationTests {  // the limit also covers waiting for a dedicated-thread slot under the full suite
    @Test func acceptAndContentTypeMismatchesGetTheirOwnStatus() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let refused = try UnixHTTP.exchange("GET", "/v1/nodes", headers: ["Accept": "text/html"], socket: agent.socket)
        #expect(refused.status == 406, "\(refused.status): \(refused.body)")
        let error = try JSONDecoder().decode(APIError.self, from: Data(refused.body.utf8))
        #expect(error.code == "not_acceptable")
        #expect(error.message.components(separatedBy: "not acceptable").count == 2, "said once: \(error.message)")
        #expect(error.message.contains("text/html") && error.message.contains("application/json"), "\(error.message)")
        let allowed = try UnixHTTP.exchange("GET", "/v1/nodes", headers: ["Accept": "text/html;q=0.9, application/json;q=0.1"], socket: agent.socket)
        #expect(allowed.status == 200, "\(allowed.status): \(allowed.body)")

        let manifest = #"{"name": "web", "services": [{"name": "web", "command": ["/bin/sleep", "60"]}]}"#
        let unsupported = try UnixHTTP.exchange(
            "PUT", "/v1/applications/web?dryRun=true", body: manifest, headers: ["Content-Type": "text/plain"], socket: agent.socket)
        #expect(unsupported.status == 415, "\(unsupported.status): \(unsupported.body)")
        let unsupportedError = try JSONDecoder().decode(APIError.self, from: Data(unsupported.body.utf8))
        #expect(unsupportedError.code == "unsupported_media_type", "\(unsupported.body)")
        #expect(try agent.get("/v1/applications", as: [ApplicationInfo].self).isEmpty, "nothing was applied")
    }
}
