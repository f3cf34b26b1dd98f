import AgentAPI
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

private let isRoot = getuid() == 0

/// Service discovery over HTTP on a real agent with real services: the catalog follows health,
/// blocking queries and watches wake on changes, Prometheus gets its format, and a stopped
/// instance is deregistered for its drain delay before its stop signal.
@Suite(.dedicatedThread, .serialized, .enabled(if: isRoot, "needs root: agentd launches services in namespaces and cgroups"), .timeLimit(.minutes(10)))
struct CatalogAPITests {
    func passing(_ agent: DevAgent, _ query: String = "") throws -> [CatalogInstanceInfo] {
        try agent.get("/v1/catalog/service/web\(query)", as: [CatalogInstanceInfo].self)
    }

    @Test func theCatalogFollowsHealthAndAnswersLookups() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "manifests/web.json", "--timeout", "90s").status == 0, "\(agent.agentLog())")
        try agent.waitUntil("3 passing instances") { try passing(agent).count == 3 }
        let running = try agent.get("/v1/instances?application=web", as: [InstanceInfo].self).filter { $0.desired == .run }
        let entries = try passing(agent)
        #expect(Set(entries.map(\.id)) == Set(running.map(\.id)))
        for entry in entries {
            let instance = try #require(running.first { $0.id == entry.id })
            #expect(entry.address == "127.0.0.1")
            #expect(entry.port?.number == instance.ports.first?.number)
            #expect(entry.tags == ["static"])
            #expect(entry.health == .passing)
            #expect(entry.node == agent.nodeName)
        }
        #expect(try passing(agent, "?tag=static").count == 3)
        #expect(try passing(agent, "?tag=other").isEmpty)
        #expect(try passing(agent, "?node=elsewhere").isEmpty)
        #expect(try agent.get("/v1/catalog/service/nothing", as: [CatalogInstanceInfo].self).isEmpty)
        #expect(try agent.get("/v1/catalog/services", as: [CatalogServiceInfo].self) == [.init(name: "web", tags: ["static"], instances: 3, passing: 3)])
        let listed = try agent.deployctl("services")
        #expect(listed.output.contains("web") && listed.output.contains("3/3"), "\(listed)")
        let described = try agent.deployctl("services", "describe", "web")
        #expect(entries.allSatisfy { described.output.contains($0.id) && described.output.contains("127.0.0.1:\($0.port?.number ?? 0)") }, "\(described)")

        // Its page gone, one instance fails its HTTP check: out of passing lookups, listed as
        // critical with passing=false; the restart that follows brings it back.
        let sick = try #require(entries.first)
        let pid = try #require(running.first { $0.id == sick.id }?.mainPID)
        try FileManager.default.removeItem(atPath: "/proc/\(pid)/root/tmp/www/index.html")
        try agent.waitUntil("the instance without its page to leave passing lookups", timeout: 30) {
            try !passing(agent).contains { $0.id == sick.id }
        }
        #expect(try passing(agent).count == 2)
        try agent.waitUntil("the restarted instance to pass again", timeout: 60) { try passing(agent).contains { $0.id == sick.id } }
    }

    @Test func blockingQueriesWatchesAndPrometheusFollowChanges() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "manifests/web.json", "--timeout", "90s").status == 0, "\(agent.agentLog())")
        try agent.waitUntil("3 passing instances") { try passing(agent).count == 3 }
        let (_, headers, _) = try UnixHTTP.exchange("GET", "/v1/catalog/service/web", socket: agent.socket)
        let index = try #require(headers["x-flotilla-index"].flatMap(Int.init))

        // Prometheus's http_sd format: a list of groups, each with "targets" (host:port) and
        // "labels" (valid label names to string values).
        let (status, body) = try UnixHTTP.request("GET", "/v1/sd/prometheus", socket: agent.socket)
        #expect(status == 200)
        let groups = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [[String: Any]])
        #expect(groups.count == 3)
        let labelName = try Regex("^[a-zA-Z_][a-zA-Z0-9_]*$")
        let target = try Regex("^127\\.0\\.0\\.1:[0-9]+$")
        for group in groups {
            #expect(Set(group.keys) == ["targets", "labels"])
            let targets = try #require(group["targets"] as? [String])
            #expect(targets.count == 1 && targets[0].wholeMatch(of: target) != nil, "\(targets)")
            let labels = try #require(group["labels"] as? [String: String])
            #expect(labels.keys.allSatisfy { $0.wholeMatch(of: labelName) != nil }, "\(labels)")
            #expect(labels["__meta_flotilla_name"] == "web" && labels["__meta_flotilla_tags"] == ",static," && labels["__meta_flotilla_tag_static"] == "true")
        }
        #expect(try UnixHTTP.request("GET", "/v1/sd/prometheus?port=metrics", socket: agent.socket).body == "[]", "no instance has that port")

        // A blocking query and a watch, both open while the service scales down.
        let blocked = Answer()
        let watched = Answer()
        let threads = [
            Thread { blocked.set(try? UnixHTTP.request("GET", "/v1/catalog/service/web?index=\(index)&wait=30s", socket: agent.socket)) },
            Thread { watched.set(try? UnixHTTP.request("GET", "/v1/catalog/service/web?watch=true&wait=6s", socket: agent.socket)) },
        ]
        threads.forEach { $0.start() }
        usleep(1_500_000)
        #expect(blocked.value == nil, "nothing changed yet: the blocking query waits")
        let began = Date()
        #expect(try agent.deployctl("scale", "web", "2").status == 0)
        try agent.waitUntil("the blocking query to answer", timeout: 20) { blocked.value != nil }
        #expect(Date().timeIntervalSince(began) < 10, "it answered on the change, not at its 30 s wait")
        // It answers on the first change past its index (Consul's semantics: possibly one that
        // leaves its answer as it was, here the new replica count before the stop).
        let answer = try #require(blocked.value)
        #expect(answer.status == 200, "\(answer)")
        #expect(try JSONDecoder().decode([CatalogInstanceInfo].self, from: Data(answer.body.utf8)).count >= 2)
        try agent.waitUntil("2 passing instances") { try passing(agent).count == 2 }
        try agent.waitUntil("the watch to end at its wait", timeout: 20) { watched.value != nil }
        let stream = try #require(watched.value)
        let events = stream.body.components(separatedBy: "\n\n").filter { $0.hasPrefix("id: ") }
        let counts = events.map { event in
            event.split(separator: "\n").first { $0.hasPrefix("data: ") }
                .flatMap { try? JSONDecoder().decode([CatalogInstanceInfo].self, from: Data($0.dropFirst(6).utf8)).count }
        }
        #expect(counts.first == 3 && counts.last == 2, "the answer at once, then after the scale-down: \(counts)\n\(stream)")
        #expect(zip(counts, counts.dropFirst()).allSatisfy { $0 != $1 }, "only changed answers are sent: \(counts)")
    }

    /// `drainDelay`: the instance leaves the catalog at once, and keeps running that long.
    @Test func aStoppedInstanceIsDeregisteredThenDrainedBeforeItsSignal() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let manifest = try String(contentsOfFile: DevAgent.repositoryRoot + "/manifests/web.json", encoding: .utf8)
            .replacingOccurrences(of: "\"discovery\": { \"tags\": [\"static\"] }", with: "\"discovery\": { \"tags\": [\"static\"], \"drainDelay\": \"4s\" }")
        #expect(manifest.contains("drainDelay"))
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "90s", input: manifest).status == 0, "\(agent.agentLog())")
        try agent.waitUntil("3 passing instances") { try passing(agent).count == 3 }
        let before = try agent.get("/v1/instances?application=web", as: [InstanceInfo].self).filter { $0.desired == .run }
        #expect(try agent.deployctl("scale", "web", "2").status == 0)
        let scaled = Date()
        var gone: InstanceInfo?
        try agent.waitUntil("one instance to leave the catalog", timeout: 10) {
            let registered = Set(try passing(agent).map(\.id))
            gone = before.first { !registered.contains($0.id) }
            return gone != nil
        }
        let pid = try #require(gone?.mainPID)
        #expect(kill(pid, 0) == 0, "deregistered, still running")
        usleep(2_500_000)
        #expect(kill(pid, 0) == 0, "still running 2.5 s into its 4 s drain")
        try agent.waitUntil("the drained instance to stop", timeout: 30) { kill(pid, 0) != 0 }
        #expect(Date().timeIntervalSince(scaled) >= 3.5, "stopped after its drain delay")
    }
}

/// One answer, set by another thread.
private final class Answer: @unchecked Sendable {
    private let lock = NSLock()
    private var answer: (status: Int, body: String)?

    var value: (status: Int, body: String)? { lock.withLock { answer } }
    func set(_ value: (status: Int, body: String)?) { lock.withLock { answer = value } }
}
