import AgentAPI
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The committed OpenAPI document is the one agentd serves, and every path it lists answers.
@Suite(.dedicatedThread, .serialized, .enabled(if: getuid() == 0, "needs root: agentd launches services"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct OpenAPITests {
    @Test func everyListedPathAnswersAsDescribed() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let committed = try String(contentsOfFile: DevAgent.repositoryRoot + "/Sources/AgentAPI/openapi.json", encoding: .utf8)
        let (status, served) = try UnixHTTP.request("GET", "/v1/openapi.json", socket: agent.socket)
        #expect(status == 200)
        // The same document (re-encoded: compared as JSON values, not as text).
        let servedValue = try JSONSerialization.jsonObject(with: Data(served.utf8)) as? NSDictionary
        let committedValue = try JSONSerialization.jsonObject(with: Data(committed.utf8)) as? NSDictionary
        #expect(servedValue != nil && servedValue == committedValue, "Sources/AgentAPI/openapi.json differs from what agentd serves")
        // docs/openapi.json is the same file.
        #expect(try String(contentsOfFile: DevAgent.repositoryRoot + "/docs/openapi.json", encoding: .utf8) == committed)
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
        // A key for the key-value reads to find.
        #expect(try UnixHTTP.request("PUT", "/v1/kv/openapi/key", body: "v", socket: agent.socket).status == 200)
        for (template, method) in ordered {
            let path = template.replacingOccurrences(of: "{name}", with: template.hasPrefix("/v1/nodes/") ? agent.nodeName : "report").replacingOccurrences(of: "{service}", with: "checksum")
                .replacingOccurrences(of: "{id}", with: template.hasPrefix("/v1/cluster/") ? "1" : instance.id)
                .replacingOccurrences(of: "{key}", with: "openapi/key")
            let body: String? =
                switch (method, template) {
                case ("put", "/v1/kv/{key}"): "new value"
                case ("put", "/v1/txn"): #"{"operations": [{"op": "get", "key": "openapi/key"}]}"#
                case ("put", _): manifest
                case ("post", let t) where t.hasSuffix("/scale"): #"{"replicas": 1}"#
                case ("post", "/v1/cluster/transfer-leadership"): #"{"to": 1}"#
                // Harmless on the one node: a drain ended, eligibility kept.
                case ("post", "/v1/nodes/{name}/drain"): #"{"enable": false}"#
                case ("post", "/v1/nodes/{name}/eligibility"): #"{"eligible": true}"#
                case ("post", "/v1/applications/{name}/rollout/undo"): "{}"
                default: nil
                }
            let (code, answer) = try UnixHTTP.request(method.uppercased(), path, body: body, socket: agent.socket)
            // A dev agent is one server that holds no CA: no join token (404), and it may not
            // remove itself, the leader (409). The batch job's rollout has ended and it has no
            // earlier revision: pause, resume and undo are refused (409). All documented answers.
            let expected: Range<Int> =
                switch template {
                case "/v1/cluster/token", "/v1/cluster/token/rotate": 404..<405
                case "/v1/cluster/members/{id}": 409..<410
                case let t where t.hasPrefix("/v1/applications/{name}/rollout/"): 409..<410
                default: 200..<300
                }
            #expect(expected.contains(code), "\(method.uppercased()) \(path) answered \(code): \(answer)")
            if path == "/v1/applications/report" && method == "put" {
                // Applying the same manifest again changes nothing.
                #expect(answer.contains("\"dryRun\""), "\(answer)")
            }
            if path != "/metrics" {
                #expect((try? JSONSerialization.jsonObject(with: Data(answer.utf8), options: [.fragmentsAllowed])) != nil, "\(method) \(path): not JSON: \(answer)")
            }
            exercised += 1
        }
        #expect(exercised >= 17)
    }

    /// The contract's edges: a method a path lacks answers 405 with the path's methods in
    /// `Allow`; booleans are `true` or `false`, nothing else; parameters keep the document's
    /// patterns and bounds; reads carry X-Flotilla-Index; the manifest schema is served where
    /// the document says; error answers carry the one error shape.
    @Test func undeclaredMethodsStrictValuesAndHeadersFollowTheDocument() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        for (method, path, allow) in [
            ("PATCH", "/v1/applications/x", "DELETE, GET, PUT"), ("DELETE", "/v1/status", "GET"), ("POST", "/v1/instances", "GET"),
            ("PUT", "/v1/applications/x/services/y/scale", "POST"),
        ] {
            let (status, headers, body) = try UnixHTTP.exchange(method, path, socket: agent.socket)
            #expect(status == 405, "\(method) \(path): \(status) \(body)")
            #expect(headers["allow"] == allow, "\(method) \(path): \(headers)")
            #expect(body.contains("\"code\":\"method_not_allowed\""))
        }
        let missing = try UnixHTTP.request("GET", "/v1/nothing-here", socket: agent.socket)
        #expect(missing.status == 404 && missing.body.contains("\"code\":\"not_found\""))
        for query in ["consistent=", "consistent=yes", "consistent=TRUE", "consistent=1", "index=-1", "index=abc", "wait=5", "wait=forever", "wait=1m2"] {
            let (status, body) = try UnixHTTP.request("GET", "/v1/status?" + query, socket: agent.socket)
            #expect(status == 400, "?\(query): \(status) \(body)")
            #expect(body.contains("\"code\":\"bad_request\""), "?\(query): \(body)")
        }
        let badName = try UnixHTTP.request("GET", "/v1/applications/Not_A_Name", socket: agent.socket)
        #expect(badName.status == 400 && badName.body.contains("name"), "\(badName)")
        for query in ["consistent=true", "consistent=false", "index=0&wait=10ms", "wait=1m30s"] {
            let (status, headers, _) = try UnixHTTP.exchange("GET", "/v1/status?" + query, socket: agent.socket)
            #expect(status == 200, "?\(query)")
            #expect(headers["x-flotilla-index"].flatMap(UInt64.init) != nil, "?\(query): \(headers)")
        }
        let (status, schema) = try UnixHTTP.request("GET", "/v1/schemas/manifest.json", socket: agent.socket)
        #expect(status == 200)
        let served = try JSONSerialization.jsonObject(with: Data(schema.utf8)) as? NSDictionary
        let committed = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: DevAgent.repositoryRoot + "/manifests/schema.json"))) as? NSDictionary
        #expect(served != nil && served == committed, "the served manifest schema differs from manifests/schema.json")
    }
}
