import AgentAPI
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The committed OpenAPI document is the one agentd serves, and every path it lists answers.
@Suite(.dedicatedThread, .serialized, .enabled(if: getuid() == 0, "needs root: agentd launches services"), .timeLimit(.minutes(5)))
struct OpenAPITests {
    @Test func everyListedPathAnswersAsDescribed() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let committed = try String(contentsOfFile: DevAgent.repositoryRoot + "/docs/openapi.json", encoding: .utf8)
        let (status, served) = try UnixHTTP.request("GET", "/v1/openapi.json", socket: agent.socket)
        #expect(status == 200)
        #expect(served.trimmingCharacters(in: .whitespacesAndNewlines) == committed.trimmingCharacters(in: .whitespacesAndNewlines),
                "docs/openapi.json differs from what agentd serves")
        #expect(try agent.deployctl("apply", "-f", "manifests/batch.json", "--timeout", "60s").status == 0, "\(agent.agentLog())")
        let instance = try #require(try agent.get("/v1/instances?application=report", as: [InstanceInfo].self).first)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(committed.utf8)) as? [String: Any])
        let paths = try #require(document["paths"] as? [String: [String: Any]])
        var exercised = 0
        // Reads first, then changes (a restart replaces the instance read above), deletes last.
        let rank = ["get": 0, "put": 1, "post": 2, "delete": 3]
        let ordered = paths.keys.sorted().flatMap { path in
            ["get", "put", "post", "delete"].filter { paths[path]?[$0] != nil }.map { (path, $0) }
        }.sorted { (rank[$0.1] ?? 9, $0.0) < (rank[$1.1] ?? 9, $1.0) }
        let manifest = try String(contentsOfFile: DevAgent.repositoryRoot + "/manifests/batch.json", encoding: .utf8)
        for (template, method) in ordered {
            let path = template.replacingOccurrences(of: "{name}", with: "report").replacingOccurrences(of: "{service}", with: "checksum")
                .replacingOccurrences(of: "{id}", with: instance.id)
            let body: String? =
                switch (method, template) {
                case ("put", _): manifest
                case ("post", let t) where t.hasSuffix("/scale"): #"{"replicas": 1}"#
                default: nil
                }
            let (code, answer) = try UnixHTTP.request(method.uppercased(), path, body: body, socket: agent.socket)
            #expect((200..<300).contains(code), "\(method.uppercased()) \(path) answered \(code): \(answer)")
            if path != "/metrics" {
                #expect((try? JSONSerialization.jsonObject(with: Data(answer.utf8), options: [.fragmentsAllowed])) != nil, "\(method) \(path): not JSON: \(answer)")
            }
            exercised += 1
        }
        #expect(exercised >= 16)
    }
}
