import AgentAPI
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

typealias KVEntry = Components.Schemas.KVEntry

/// The key-value store through the real agent's API and deployctl: keys as paths, indexes,
/// check-and-set, transactions, blocking queries on a key or a prefix, and bad input refused
/// in the API's one shape without changing anything.
@Suite(.dedicatedThread, .serialized, .enabled(if: getuid() == 0, "needs root: agentd launches services"), .timeLimit(.minutes(10)))
struct KVAPITests {
    func put(_ agent: DevAgent, _ path: String, _ value: String) throws -> (status: Int, body: String) {
        try UnixHTTP.request("PUT", path, body: value, socket: agent.socket)
    }

    func entry(_ body: String) throws -> KVEntry { try JSONDecoder().decode(KVEntry.self, from: Data(body.utf8)) }

    func value(_ entry: KVEntry) -> String { String(decoding: Data(base64Encoded: entry.value ?? "") ?? Data(), as: UTF8.self) }

    func error(_ body: String) -> APIError? { try? JSONDecoder().decode(APIError.self, from: Data(body.utf8)) }

    @Test func keysAreSlashSeparatedPathsWithIndexesAndCheckAndSet() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let created = try put(agent, "/v1/kv/app/config/port", "8080")
        #expect(created.status == 200, "\(created.body)")
        let first = try entry(created.body)
        #expect(first.key == "app/config/port" && first.size == 4 && first.createIndex == first.modifyIndex && first.value == nil)
        // The same key with its slashes percent-encoded, as generated clients send it.
        let read = try UnixHTTP.exchange("GET", "/v1/kv/app%2Fconfig%2Fport", socket: agent.socket)
        #expect(try read.status == 200 && value(entry(read.body)) == "8080", "\(read.body)")
        #expect(read.headers["x-flotilla-index"] == String(first.modifyIndex))
        #expect(try UnixHTTP.request("GET", "/v1/kv/app/config/port?raw=true", socket: agent.socket).body == "8080")

        // Create-only refuses an existing key, naming what it holds; the right index is taken.
        let again = try put(agent, "/v1/kv/app/config/port?cas=0", "9")
        #expect(again.status == 409 && error(again.body)?.code == "cas_failed", "\(again.body)")
        #expect(again.body.contains("modify index \(first.modifyIndex)"))
        let stale = try put(agent, "/v1/kv/app/config/port?cas=\(first.modifyIndex + 100)", "9")
        #expect(stale.status == 409)
        let swapped = try entry(try put(agent, "/v1/kv/app/config/port?cas=\(first.modifyIndex)", "9090").body)
        #expect(swapped.createIndex == first.createIndex && swapped.modifyIndex > first.modifyIndex)

        _ = try put(agent, "/v1/kv/app/config/name", "web")
        _ = try put(agent, "/v1/kv/apple", "fruit")
        _ = try put(agent, "/v1/kv/app/", "folder")
        let listed = try agent.get("/v1/kv/app/?recurse=true", as: [KVEntry].self)
        #expect(listed.map(\.key) == ["app/", "app/config/name", "app/config/port"])
        #expect(listed.map(value) == ["folder", "web", "9090"])
        let keys = try agent.get("/v1/kv?prefix=app&keys=true", as: [KVEntry].self)
        #expect(keys.map(\.key) == ["app/", "app/config/name", "app/config/port", "apple"] && keys.allSatisfy { $0.value == nil })

        let missing = try UnixHTTP.exchange("GET", "/v1/kv/app/config/none", socket: agent.socket)
        #expect(missing.status == 404 && error(missing.body)?.code == "key_not_found" && missing.headers["x-flotilla-index"] != nil)
        // How current an absence is, as for a key found: a stale read of nothing has an age too.
        let staleMissing = try UnixHTTP.exchange("GET", "/v1/kv/app/config/none?stale=true", socket: agent.socket)
        #expect(staleMissing.status == 404 && staleMissing.headers["x-flotilla-known-leader"] == "true", "\(staleMissing.headers)")
        #expect(staleMissing.headers["x-flotilla-last-contact"] != nil, "\(staleMissing.headers)")
        // A delete with cas: refused while the key has another index; taken at its index; and
        // taken again when the key is already gone (a retry), as Consul does.
        let staleDelete = try UnixHTTP.exchange("DELETE", "/v1/kv/app/config/name?cas=\(swapped.modifyIndex + 100)", socket: agent.socket)
        #expect(staleDelete.status == 409 && error(staleDelete.body)?.code == "cas_failed", "\(staleDelete.body)")
        let name = try entry(try UnixHTTP.request("GET", "/v1/kv/app/config/name", socket: agent.socket).body)
        for attempt in 1...2 {
            let casDelete = try UnixHTTP.exchange("DELETE", "/v1/kv/app/config/name?cas=\(name.modifyIndex)", socket: agent.socket)
            #expect(casDelete.status == 200 && casDelete.body.contains(#""deleted":\#(attempt == 1 ? 1 : 0)"#), "\(attempt): \(casDelete.body)")
        }
        _ = try put(agent, "/v1/kv/app/config/name", "web")
        let deleted = try UnixHTTP.request("DELETE", "/v1/kv/app/?recurse=true", socket: agent.socket)
        #expect(deleted.status == 200 && deleted.body.contains(#""deleted":3"#), "\(deleted.body)")
        #expect(try agent.get("/v1/kv", as: [KVEntry].self).map(\.key) == ["apple"])

        // deployctl: any bytes in and out, a folder's lines, a refusal's code and exit status.
        let binary = agent.stateDirectory + "/binary-value"
        let bytes: [UInt8] = [0, 255, 10, 13, 0xC3, 0x28]
        #expect(FileManager.default.createFile(atPath: binary, contents: Data(bytes)))
        #expect(try agent.deployctl("kv", "put", "bin/blob", "--file", binary).status == 0)
        let json = try agent.deployctl("kv", "get", "bin/blob", "-o", "json")
        #expect(Data(base64Encoded: try entry(json.output).value ?? "") == Data(bytes), "\(json)")
        #expect(try agent.deployctl("kv", "put", "cfg/a", "1").status == 0)
        #expect(try agent.deployctl("kv", "put", "cfg/b", "2").status == 0)
        #expect(try agent.deployctl("kv", "get", "cfg/", "--recurse").output == "cfg/a:1\ncfg/b:2\n")
        #expect(try agent.deployctl("kv", "get", "cfg/a").output == "1")
        let absent = try agent.deployctl("kv", "get", "cfg/zzz")
        #expect(absent.status == 1 && absent.error.contains("key_not_found"), "\(absent)")
        let refused = try agent.deployctl("kv", "put", "cfg/a", "3", "--cas", "0")
        #expect(refused.status == 1 && refused.error.contains("cas_failed"), "\(refused)")
        #expect(try agent.deployctl("kv", "ls", "cfg").output.contains("cfg/b"))
        #expect(try agent.deployctl("kv", "delete", "cfg", "--recurse").output.hasPrefix("deleted 2 keys"))
    }

    @Test func transactionsApplyWhollyOrNotAndNameTheComparisonThatFailed() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let a = try entry(try put(agent, "/v1/kv/t/a", "1").body)
        _ = try put(agent, "/v1/kv/t/b", "2")
        let failing = #"""
            {"compares": [{"key": "t/a", "modifyIndex": \#(a.modifyIndex)}, {"key": "t/b", "value": "OQ=="}],
             "operations": [{"op": "set", "key": "t/c", "value": "Mw=="}, {"op": "delete", "key": "t/a"}]}
            """#
        let refused = try UnixHTTP.request("PUT", "/v1/txn", body: failing, socket: agent.socket)
        #expect(refused.status == 409 && error(refused.body)?.code == "compare_failed" && error(refused.body)?.path == "compares[1]", "\(refused.body)")
        #expect(try agent.get("/v1/kv/t/?recurse=true", as: [KVEntry].self).map(\.key) == ["t/a", "t/b"], "a failed transaction changed something")

        let holding = #"""
            {"compares": [{"key": "t/a", "modifyIndex": \#(a.modifyIndex)}, {"key": "t/b", "value": "Mg=="}, {"key": "t/c", "modifyIndex": 0}],
             "operations": [{"op": "set", "key": "t/c", "value": "Mw=="}, {"op": "get", "key": "t/c"}, {"op": "delete", "key": "t/a"},
                            {"op": "get", "key": "t/a"}, {"op": "deleteTree", "key": "t/b"}]}
            """#
        let done = try UnixHTTP.request("PUT", "/v1/txn", body: holding, socket: agent.socket)
        #expect(done.status == 200, "\(done.body)")
        let result = try JSONDecoder().decode(Components.Schemas.KVTransactionResult.self, from: Data(done.body.utf8))
        #expect(result.results.map(\.op) == [.set, .get, .delete, .get, .deleteTree])
        #expect(result.results[1].entry.map(value) == "3" && result.results[1].entry?.modifyIndex == result.index)
        #expect(result.results[3].entry == nil && result.results[2].deleted == 1 && result.results[4].deleted == 1)
        #expect(try agent.get("/v1/kv/t/?recurse=true", as: [KVEntry].self).map(\.key) == ["t/c"])
    }

    @Test func badKeysValuesAndTransactionsAreRefusedAndChangeNothing() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        _ = try put(agent, "/v1/kv/keep", "1")
        let before = try UnixHTTP.exchange("GET", "/v1/kv", socket: agent.socket)
        let twoByte = String(repeating: "é", count: 300)  // 300 characters, 600 bytes
        let bigValue = String(repeating: "v", count: 512 * 1024 + 1)
        let manyOperations = (0..<65).map { #"{"op": "get", "key": "k\#($0)"}"# }.joined(separator: ",")
        let cases: [(method: String, path: String, body: String?, status: Int, code: String)] = [
            ("PUT", "/v1/kv/", "x", 405, "method_not_allowed"),
            ("PUT", "/v1/kv/a/../b", "x", 400, "bad_request"),
            ("PUT", "/v1/kv/a/./b", "x", 400, "bad_request"),
            ("PUT", "/v1/kv/..", "x", 400, "bad_request"),
            ("PUT", "/v1/kv/a//b", "x", 400, "bad_request"),
            ("PUT", "/v1/kv/%2Fa", "x", 400, "bad_request"),
            ("PUT", "/v1/kv/a%0Ab", "x", 400, "bad_request"),
            ("PUT", "/v1/kv/a%zz", "x", 400, "bad_request"),
            ("PUT", "/v1/kv/" + String(repeating: "k", count: 513), "x", 400, "bad_request"),
            ("PUT", "/v1/kv/" + (twoByte.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? ""), "x", 422, "invalid_key"),
            ("PUT", "/v1/kv/big", bigValue, 413, "value_too_large"),
            ("PUT", "/v1/kv/keep?cas=-1", "x", 400, "bad_request"),
            ("DELETE", "/v1/kv/keep?recurse=true&cas=3", nil, 422, "conflicting_parameters"),
            ("GET", "/v1/kv/keep?recurse=true&raw=true", nil, 422, "conflicting_parameters"),
            ("GET", "/v1/kv/keep?index=-1", nil, 400, "bad_request"),
            ("GET", "/v1/kv/keep?stale=maybe", nil, 400, "bad_request"),
            ("PUT", "/v1/txn", #"{"operations": [\#(manyOperations)]}"#, 422, "invalid_transaction"),
            ("PUT", "/v1/txn", #"{"operations": []}"#, 422, "invalid_transaction"),
            ("PUT", "/v1/txn", #"{"operations": [{"op": "put", "key": "a"}]}"#, 400, "bad_request"),
            ("PUT", "/v1/txn", #"{"operations": [{"op": "set", "key": "a"}]}"#, 422, "invalid_transaction"),
            ("PUT", "/v1/txn", #"{"operations": [{"op": "get", "key": "a", "value": "eA=="}]}"#, 422, "invalid_transaction"),
            ("PUT", "/v1/txn", #"{"operations": [{"op": "set", "key": "a", "value": "not base64!"}]}"#, 422, "invalid_transaction"),
            ("PUT", "/v1/txn", #"{"operations": [{"op": "set", "key": "a/../b", "value": "eA=="}]}"#, 422, "invalid_key"),
            ("PUT", "/v1/txn", #"{"compares": [{"key": "keep"}], "operations": [{"op": "delete", "key": "keep"}]}"#, 422, "invalid_transaction"),
            ("PUT", "/v1/txn", "{", 400, "bad_request"),
        ]
        for bad in cases {
            let (status, body) = try UnixHTTP.request(bad.method, bad.path, body: bad.body, socket: agent.socket)
            #expect(status == bad.status && error(body)?.code == bad.code, "\(bad.method) \(bad.path.prefix(80)) answered \(status): \(body.prefix(300))")
        }
        let after = try UnixHTTP.exchange("GET", "/v1/kv", socket: agent.socket)
        #expect(after.body == before.body && after.headers["x-flotilla-index"] == before.headers["x-flotilla-index"], "bad input changed the store")
    }

    @Test func blockingQueriesWaitForTheirKeyOrPrefixAndWakeOnDeletes() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let port = try entry(try put(agent, "/v1/kv/svc/web/port", "80").body)
        _ = try put(agent, "/v1/kv/svc/web/host", "a")

        // A write elsewhere does not end the wait: it runs its whole second, with the same index.
        var start = Date()
        let unchanged = try Self.blockingGet(agent, "/v1/kv/svc/web/port?index=\(port.modifyIndex)&wait=1s") {
            _ = try put(agent, "/v1/kv/svc/other", "x")
            _ = try put(agent, "/v1/kv/svc/web/host", "b")
        }
        #expect(Date().timeIntervalSince(start) >= 0.9, "a change of another key woke the query")
        #expect(unchanged.headers["x-flotilla-index"] == String(port.modifyIndex))

        // Key-value writes are not changes of the cluster's state: a blocking query on it (the
        // leader's planning and every node's watch wait the same way) sleeps through them.
        let status = try UnixHTTP.exchange("GET", "/v1/status", socket: agent.socket)
        let stateIndex = try #require(status.headers["x-flotilla-index"])
        start = Date()
        let quiet = try Self.blockingGet(agent, "/v1/status?index=\(stateIndex)&wait=1s") {
            for value in ["x", "y", "z"] { _ = try put(agent, "/v1/kv/svc/flag", value) }
        }
        #expect(Date().timeIntervalSince(start) >= 0.9 && quiet.headers["x-flotilla-index"] == stateIndex, "key-value writes woke a watch of the cluster's state")

        // A write of the key ends it, with the new value and index.
        let changed = try Self.blockingGet(agent, "/v1/kv/svc/web/port?index=\(port.modifyIndex)&wait=20s") {
            _ = try put(agent, "/v1/kv/svc/web/port", "81")
        }
        #expect(value(try entry(changed.body)) == "81")

        // A delete under a prefix ends a wait on the prefix, and the index moves past it.
        let folder = try UnixHTTP.exchange("GET", "/v1/kv/svc/web/?recurse=true", socket: agent.socket)
        let folderIndex = try #require(folder.headers["x-flotilla-index"].flatMap(Int64.init))
        start = Date()
        let afterDelete = try Self.blockingGet(agent, "/v1/kv/svc/web/?recurse=true&index=\(folderIndex)&wait=20s") {
            _ = try UnixHTTP.request("DELETE", "/v1/kv/svc/web/host", socket: agent.socket)
        }
        #expect(Date().timeIntervalSince(start) < 15, "the delete did not wake the prefix's query")
        #expect(try JSONDecoder().decode([KVEntry].self, from: Data(afterDelete.body.utf8)).map(\.key) == ["svc/web/port"])
        #expect((afterDelete.headers["x-flotilla-index"].flatMap(Int64.init) ?? 0) > folderIndex)

        // A missing key: the 404's index, waited past, ends when the key appears.
        let missing = try UnixHTTP.exchange("GET", "/v1/kv/svc/db/port", socket: agent.socket)
        let missingIndex = try #require(missing.headers["x-flotilla-index"])
        let appeared = try Self.blockingGet(agent, "/v1/kv/svc/db/port?index=\(missingIndex)&wait=20s") {
            _ = try put(agent, "/v1/kv/svc/db/port", "5432")
        }
        #expect(try appeared.status == 200 && value(entry(appeared.body)) == "5432")

        // deployctl kv watch prints the value, each change, and the key's absence: each change
        // is made once the one before has been printed (a watch shows the state it finds; a
        // delete and a put made faster than it asks again show as the put alone).
        let watched = try agent.following(["kv", "watch", "svc/web/port"], steps: [
            (waitFor: "81\n", then: { _ = try put(agent, "/v1/kv/svc/web/port", "82") }),
            (waitFor: "82\n", then: {
                _ = try put(agent, "/v1/kv/svc/unrelated", "y")
                _ = try UnixHTTP.request("DELETE", "/v1/kv/svc/web/port", socket: agent.socket)
            }),
            (waitFor: "(absent)\n", then: { _ = try put(agent, "/v1/kv/svc/web/port", "83") }),
        ], until: "(absent)\n83\n")
        #expect(watched.hasPrefix("81\n82\n(absent)\n83\n"), "\(watched)")

        // A watch outlives its agent's restart: it asks again until the agent answers, and
        // prints the change made meanwhile.
        let outlived = try agent.following(["kv", "watch", "svc/web/port"], steps: [
            (waitFor: "83\n", then: {
                agent.kill9()
                usleep(1_500_000)
                try agent.start()
                _ = try put(agent, "/v1/kv/svc/web/port", "84")
            }),
        ], until: "84\n", timeout: 60)
        #expect(outlived.contains("asking again in"), "\(outlived)")
        #expect(outlived.hasSuffix("84\n"), "\(outlived)")
    }

    @Test func aStoppingAgentAnswersItsBlockingQueriesInsteadOfWaitingThemOut() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let key = try entry(try put(agent, "/v1/kv/w", "1").body)
        let start = Date()
        // Waits of five minutes, on a key and on the whole state: SIGTERM ends both at once
        // (the API's graceful shutdown waits for answers in flight).
        let answered = try Self.blockingGet(agent, "/v1/kv/w?index=\(key.modifyIndex)&wait=5m") {
            let status = try UnixHTTP.exchange("GET", "/v1/status", socket: agent.socket)
            Thread.detachNewThread { [socket = agent.socket, index = status.headers["x-flotilla-index"] ?? "1"] in
                _ = try? UnixHTTP.exchange("GET", "/v1/status?index=\(index)&wait=5m", socket: socket)
            }
            usleep(300_000)
            agent.terminate()
        }
        #expect(answered.status == 200 && Date().timeIntervalSince(start) < 60, "the agent waited out its blocking queries before stopping")
    }

    /// A service given keys as a variable and as a file sees their values; a change of one
    /// replaces its instances (under the update strategy), which then see the new value; a
    /// write of the same value, or of a key no service reads, replaces nothing.
    @Test func servicesGetKeysAsVariablesAndFilesAndRollWhenTheyChange() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        _ = try put(agent, "/v1/kv/greeter/greeting", "hello")
        _ = try put(agent, "/v1/kv/greeter/config.json", #"{"level": 1}"#)
        let manifest = """
            {"name": "greeter", "services": [{"name": "web", "replicas": 2,
              "command": ["/bin/sh", "-c", "echo \\"greeting=$GREETING\\"; echo \\"config=$(cat /etc/greeter/config.json)\\"; exec sleep 3600"],
              "rootfs": "/var/lib/flotilla/images/busybox", "readOnlyRootfs": true,
              "kv": [{"key": "greeter/greeting", "env": "GREETING"}, {"key": "greeter/config.json", "file": "/etc/greeter/config.json"}],
              "resources": {"cpu": 0.01, "memory": "8Mi", "pids": 4}, "discovery": {"enabled": false}}]}
            """
        let applied = try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest)
        #expect(applied.status == 0, "\(applied)\n\(agent.agentLog())")
        try agent.waitUntil("both instances to print their keys", timeout: 30) {
            let logs = try agent.deployctl("logs", "greeter/web").output
            return logs.components(separatedBy: "greeting=hello").count - 1 == 2 && logs.components(separatedBy: #"config={"level": 1}"#).count - 1 == 2
        }
        let first = Set(try agent.get("/v1/instances?application=greeter", as: [InstanceInfo].self).filter { $0.desired == .run }.map(\.id))
        #expect(first.count == 2)

        // The same value again, and a key nobody reads: nothing is replaced.
        _ = try put(agent, "/v1/kv/greeter/greeting", "hello")
        _ = try put(agent, "/v1/kv/greeter/unrelated", "x")
        usleep(1_500_000)
        #expect(Set(try agent.get("/v1/instances?application=greeter", as: [InstanceInfo].self).filter { $0.desired == .run }.map(\.id)) == first)

        // A new value: both instances are replaced, and the new ones read it.
        _ = try put(agent, "/v1/kv/greeter/config.json", #"{"level": 2}"#)
        try agent.waitUntil("two new instances running with the new file", timeout: 60) {
            let running = try agent.get("/v1/instances?application=greeter", as: [InstanceInfo].self).filter { $0.desired == .run && $0.status == .running }
            guard running.count == 2, first.isDisjoint(with: running.map(\.id)) else { return false }
            return try running.allSatisfy { try agent.deployctl("logs", $0.id).output.contains(#"config={"level": 2}"#) }
        }
        let events = try agent.deployctl("describe", "service", "greeter/web").output
        #expect(events.contains("a key it reads changed"), "\(events)")
    }

    @Test func readsSayHowStaleTheyMayBe() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        _ = try put(agent, "/v1/kv/a", "1")
        for path in ["/v1/kv/a", "/v1/kv/a?stale=true", "/v1/kv?stale=true"] {
            let read = try UnixHTTP.exchange("GET", path, socket: agent.socket)
            // A single agent leads: it is its own last contact.
            #expect(read.status == 200 && read.headers["x-flotilla-known-leader"] == "true" && read.headers["x-flotilla-last-contact"] == "0", "\(path): \(read.headers)")
        }
    }

    /// Starts a blocking GET on a thread of its own, runs `action` while it waits, and returns
    /// its answer.
    static func blockingGet(
        _ agent: DevAgent, _ path: String, while action: () throws -> Void
    ) throws -> (status: Int, headers: [String: String], body: String) {
        let answer = LockedBox<Result<(status: Int, headers: [String: String], body: String), any Error>?>(nil)
        let done = DispatchSemaphore(value: 0)
        let socket = agent.socket
        Thread.detachNewThread {
            answer.set(Result { try UnixHTTP.exchange("GET", path, socket: socket) })
            done.signal()
        }
        usleep(300_000)
        try action()
        guard done.wait(timeout: .now() + 60) == .success, let result = answer.get() else { throw TestFailure("GET \(path) did not answer") }
        return try result.get()
    }
}

/// A value handed from one thread to another.
final class LockedBox<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func get() -> Value { lock.withLock { value } }
    func set(_ newValue: Value) { lock.withLock { value = newValue } }
}
