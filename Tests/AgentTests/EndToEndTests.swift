import AgentAPI
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

private let isRoot = getuid() == 0

/// The whole product on one node: real agentd, real deployctl, real services from the examples.
@Suite(.dedicatedThread, .serialized, .enabled(if: isRoot, "needs root: agentd launches services in namespaces and cgroups"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct EndToEndTests {
    /// Ports of the ready instances of a service.
    func ports(_ agent: DevAgent, application: String, service: String, port: String = "http") throws -> [Int] {
        try agent.get("/v1/instances?application=\(application)&service=\(service)", as: [InstanceInfo].self)
            .filter { $0.desired == .run }
            .compactMap { $0.ports.first { $0.name == port }?.number }
    }

    @Test func webExampleRunsAndEveryReplicaAnswers() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let apply = try agent.deployctl("apply", "-f", "manifests/web.json", "--timeout", "90s")
        #expect(apply.status == 0, "\(apply)\n\(agent.agentLog())")
        #expect(apply.output.contains("+ create"))
        let ports = try ports(agent, application: "web", service: "web")
        #expect(ports.count == 3)
        var hostnames = Set<String>()
        for port in ports {
            let (status, body) = try UnixHTTP.request("GET", "/index.html", port: port)
            #expect(status == 200)
            #expect(body.contains("Hello from"))
            hostnames.insert(body)
        }
        #expect(hostnames.count == 3, "each replica names itself: \(hostnames)")
        let status = try agent.deployctl("status")
        #expect(status.output.contains("3/3"), "\(status.output)")
    }

    @Test func batchJobRunsOnceAndCompletes() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let apply = try agent.deployctl("apply", "-f", "manifests/batch.json", "--timeout", "60s")
        #expect(apply.status == 0, "\(apply)\n\(agent.agentLog())")
        let instances = try agent.get("/v1/instances?application=report", as: [InstanceInfo].self)
        #expect(instances.count == 1)
        #expect(instances.first?.status == .completed)
        #expect(instances.first?.exit?.code == 0)
        let logs = try agent.deployctl("logs", "report/checksum")
        #expect(logs.output.contains("step 5") && logs.output.contains("done"), "\(logs)")
        // It stays completed: nothing runs it again.
        sleep(2)
        let again = try agent.get("/v1/instances?application=report", as: [InstanceInfo].self)
        #expect(again.map(\.id) == instances.map(\.id))
        #expect(again.first?.status == .completed)
    }

    @Test func newRevisionReplacesInstancesAndScaleAndDeleteWork() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "manifests/worker.json", "--timeout", "60s").status == 0, "\(agent.agentLog())")
        let first = try agent.get("/v1/instances?application=worker", as: [InstanceInfo].self).filter { $0.desired == .run }
        #expect(first.count == 2)
        // A changed environment is a new revision whose instances replace the old ones.
        let changed = try String(contentsOfFile: DevAgent.repositoryRoot + "/manifests/worker.json", encoding: .utf8)
            .replacingOccurrences(of: "\"WORKER_QUEUE\": \"default\"", with: "\"WORKER_QUEUE\": \"urgent\"")
        let reapply = try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: changed)
        #expect(reapply.status == 0, "\(reapply)")
        #expect(reapply.output.contains("~ replace"))
        let second = try agent.get("/v1/instances?application=worker", as: [InstanceInfo].self).filter { $0.desired == .run }
        #expect(second.count == 2)
        #expect(Set(second.map(\.id)).isDisjoint(with: first.map(\.id)))
        #expect(second.allSatisfy { $0.revision == 2 })
        // Scale up, then down.
        #expect(try agent.deployctl("scale", "worker/ticker", "4").status == 0)
        try agent.waitUntil("4 running tickers") {
            try agent.get("/v1/instances?application=worker", as: [InstanceInfo].self).filter { $0.desired == .run && $0.status == .running }.count == 4
        }
        #expect(try agent.deployctl("scale", "worker/ticker", "1").status == 0)
        try agent.waitUntil("1 ticker left") {
            try agent.get("/v1/instances?application=worker", as: [InstanceInfo].self).filter { $0.desired == .run }.count == 1
        }
        // Delete: processes, cgroups and state gone.
        #expect(try agent.deployctl("delete", "worker").status == 0)
        try agent.waitUntil("no instance left") {
            try agent.get("/v1/instances?application=worker", as: [InstanceInfo].self).isEmpty
        }
        try agent.waitUntil("no process or cgroup left") {
            CgroupCleanup.pids(parent: agent.cgroupParent).isEmpty && CgroupCleanup.children(parent: agent.cgroupParent).isEmpty
        }
        #expect(CgroupCleanup.children(parent: agent.cgroupParent).isEmpty, "\(CgroupCleanup.children(parent: agent.cgroupParent))")
        let instanceDirectories = (try? FileManager.default.contentsOfDirectory(atPath: agent.stateDirectory + "/state/supervisor/instances")) ?? []
        #expect(instanceDirectories.isEmpty, "\(instanceDirectories)")
        #expect(Mounts.under(agent.stateDirectory + "/state").isEmpty)
        #expect(try agent.deployctl("status", "worker").status == 1)
    }

    /// A service that handles SIGTERM and carries on: each stop takes its whole timeout. Four such
    /// stops run side by side (about one timeout, not four), and the starts of another
    /// application do not wait behind them (`minHealthyTime` 0s: `apply` returns once its
    /// rollout succeeded, which is what is timed).
    @Test func slowStopsHoldUpNeitherEachOtherNorOtherStarts() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        func manifest(_ name: String, replicas: Int) -> String {
            """
            {"name": "\(name)", "services": [{"name": "sleeper", "user": "nobody",
              "command": ["/bin/sh", "-c", "trap 'echo ignoring TERM' TERM; while true; do sleep 1; done"],
              "rootfs": "/var/lib/flotilla/images/busybox", "readOnlyRootfs": true, "stopTimeout": "4s",
              "resources": {"cpu": 0.01, "memory": "8Mi", "pids": 4}, "replicas": \(replicas), "discovery": {"enabled": false},
              "update": {"minHealthyTime": "0s"}}]}
            """
        }
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest("stubborn", replicas: 4)).status == 0, "\(agent.agentLog())")
        let stubborn = try agent.get("/v1/instances?application=stubborn", as: [InstanceInfo].self)
        #expect(stubborn.count == 4)
        let deleted = Date()
        #expect(try agent.deployctl("delete", "stubborn").status == 0)
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest("prompt", replicas: 2)).status == 0)
        let started = Date().timeIntervalSince(deleted)
        #expect(started < 3.5, "the new application ran only after \(started) s: it waited for the 4 s stops")
        try agent.waitUntil("the stubborn instances gone", timeout: 30) {
            try agent.get("/v1/instances?application=stubborn", as: [InstanceInfo].self).isEmpty
        }
        let stopped = Date().timeIntervalSince(deleted)
        #expect(stopped < 9, "four 4 s stops took \(stopped) s: they ran one after another")
        #expect(stopped >= 3.5, "the stops took \(stopped) s: not the 4 s timeout this test is about")
        #expect(try agent.get("/v1/instances?application=prompt", as: [InstanceInfo].self).filter { $0.status == .running }.count == 2)
    }

    @Test func staleCheckAndSetIsRefused() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        // --revision 0: create only.
        #expect(try agent.deployctl("apply", "-f", "manifests/batch.json", "--revision", "0", "--no-wait").status == 0)
        let exists = try agent.deployctl("apply", "-f", "manifests/batch.json", "--revision", "0", "--no-wait")
        #expect(exists.status == 1 && exists.error.contains("already exists at revision 1"), "\(exists)")
        let changed = try String(contentsOfFile: DevAgent.repositoryRoot + "/manifests/batch.json", encoding: .utf8)
            .replacingOccurrences(of: "\"cpu\": 0.5", with: "\"cpu\": 0.25")
        let refused = try agent.deployctl("apply", "-f", "-", "--revision", "7", "--no-wait", input: changed)
        #expect(refused.status == 1)
        #expect(refused.error.contains("revision_conflict"))
        #expect(refused.error.contains("is at revision 1, not 7"))
        #expect(try agent.deployctl("apply", "-f", "-", "--revision", "1", "--no-wait", input: changed).status == 0)
    }

    @Test func agentRefusesInvalidManifestsWithLocatedErrors() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let text = try String(contentsOfFile: DevAgent.repositoryRoot + "/manifests/invalid/web-typos.json", encoding: .utf8)
        // Straight to the API: the agent checks, not only the CLI.
        let (status, body) = try UnixHTTP.request("PUT", "/v1/applications/web", body: text, socket: agent.socket)
        // JSON, but not a valid manifest: 422 with every problem located (400 is for what does
        // not parse at all).
        #expect(status == 422)
        let error = try JSONDecoder().decode(APIError.self, from: Data(body.utf8))
        #expect(error.code == "invalid_manifest")
        #expect(error.issues.contains { $0.path == "services[0].health.interval" && $0.message.contains("write \"5s\"") })
        #expect(error.issues.contains { $0.path == "services[0].comand" && $0.message.contains("did you mean \"command\"") })
        // Bad JSON, a mismatched name, an unknown path: all in the one error shape.
        let (syntaxStatus, syntaxBody) = try UnixHTTP.request("PUT", "/v1/applications/web", body: "{", socket: agent.socket)
        #expect(syntaxStatus == 400 && syntaxBody.contains("not valid JSON"))
        let web = try String(contentsOfFile: DevAgent.repositoryRoot + "/manifests/web.json", encoding: .utf8)
        let (nameStatus, nameBody) = try UnixHTTP.request("PUT", "/v1/applications/other", body: web, socket: agent.socket)
        #expect(nameStatus == 422 && nameBody.contains("names \\\"web\\\""))
        let (missingStatus, missingBody) = try UnixHTTP.request("GET", "/v1/nope", socket: agent.socket)
        #expect(missingStatus == 404 && missingBody.contains("\"code\":\"not_found\""))
    }

    @Test func killNineAndRestartRecoversWithoutRestartingServices() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "manifests/web.json", "--timeout", "90s").status == 0, "\(agent.agentLog())")
        let instancesBefore = try agent.get("/v1/instances?application=web", as: [InstanceInfo].self)
        // Main processes only: busybox httpd forks a child per request, health checks included,
        // so the cgroups' pids come and go.
        let before = Set(instancesBefore.compactMap(\.mainPID))
        #expect(before.count == 3 && before.isSubset(of: CgroupCleanup.pids(parent: agent.cgroupParent)))
        agent.kill9()
        // The services run on without their agent.
        for port in instancesBefore.compactMap({ $0.ports.first?.number }) {
            #expect(try UnixHTTP.request("GET", "/index.html", port: port).status == 200)
        }
        try agent.start()
        try agent.waitUntil("instances healthy again") {
            try agent.get("/v1/instances?application=web", as: [InstanceInfo].self).filter { $0.status == .healthy }.count == 3
        }
        let instancesAfter = try agent.get("/v1/instances?application=web", as: [InstanceInfo].self)
        let after = Set(instancesAfter.compactMap(\.mainPID))
        #expect(after == before && after.isSubset(of: CgroupCleanup.pids(parent: agent.cgroupParent)), "no service was restarted")
        #expect(instancesAfter.map(\.id).sorted() == instancesBefore.map(\.id).sorted())
        // And it still takes changes.
        #expect(try agent.deployctl("apply", "-f", "manifests/batch.json", "--timeout", "60s").status == 0)
    }

    /// What operators and scripts look for first: an instance's main pid, its restart count
    /// and how its last process ended, in `status -o json` and in `describe`.
    @Test func statusShowsMainPIDRestartsAndLastExit() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let manifest = #"""
            {"name": "flaky", "services": [
              {"name": "crash", "command": ["/bin/sh", "-c", "sleep 0.2; exit 3"], "rootfs": "/var/lib/flotilla/images/busybox",
               "restart": {"initialDelay": "100ms", "maxDelay": "200ms", "maxRestarts": 100}},
              {"name": "steady", "command": ["/bin/sleep", "3600"], "rootfs": "/var/lib/flotilla/images/busybox"}]}
            """#
        #expect(try agent.deployctl("apply", "-f", "-", "--no-wait", input: manifest).status == 0)
        struct Detail: Decodable { var instances: [InstanceInfo] }
        var instances: [InstanceInfo] = []
        try agent.waitUntil("the crashing instance's restarts and the steady one's pid reported") {
            let output = try agent.deployctl("status", "flaky", "-o", "json").output
            instances = try JSONDecoder().decode(Detail.self, from: Data(output.utf8)).instances
            let crash = instances.first { $0.service == "crash" }
            let steady = instances.first { $0.service == "steady" }
            return (crash?.restartCount ?? 0) >= 2 && crash?.lastExit?.code == 3 && steady?.mainPID != nil
        }
        let steady = try #require(instances.first { $0.service == "steady" })
        let pid = try #require(steady.mainPID)
        #expect(processIsRunning(pid), "pid \(pid) is not running")
        #expect(steady.restartCount == 0 && steady.lastExit == nil)
        let described = try agent.deployctl("describe", "service", "flaky/crash")
        #expect(described.output.contains("restarts "), "\(described.output)")
        #expect(described.output.contains("last exit exit 3"), "\(described.output)")
        let table = try agent.deployctl("status", "flaky").output
        #expect(table.contains("RESTARTS") && table.contains(String(pid)), "\(table)")
    }

    @Test func concurrentAppliesNeverCorruptState() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let base = try String(contentsOfFile: DevAgent.repositoryRoot + "/manifests/batch.json", encoding: .utf8)
        let results = Mutexed<[Int32]>([])
        DispatchQueue.concurrentPerform(iterations: 10) { client in
            let manifest = base.replacingOccurrences(of: "\"name\": \"report\"", with: "\"name\": \"report-\(client % 5)\"")
                .replacingOccurrences(of: "md5sum", with: "md5sum; echo client \(client)")
            let result = try? agent.deployctl("apply", "-f", "-", "--no-wait", input: manifest)
            results.mutate { $0.append(result?.status ?? -1) }
        }
        #expect(results.value.allSatisfy { $0 == 0 }, "\(results.value)")
        let applications = try agent.get("/v1/applications", as: [ApplicationInfo].self)
        #expect(applications.map(\.name).sorted() == (0..<5).map { "report-\($0)" })
        // Two clients per application, each sending text of its own (its client number is in the
        // command): both applies must land, one revision each. A lost update leaves revision 1.
        #expect(applications.allSatisfy { $0.revision == 2 }, "\(applications.map { ($0.name, $0.revision) })")
        let status = try agent.get("/v1/status", as: ClusterStatus.self)
        #expect(status.applications.count == 5)
    }
}

/// A value shared between threads.
final class Mutexed<Value>: @unchecked Sendable {
    private var stored: Value
    private let lock = NSLock()

    init(_ value: Value) { stored = value }

    var value: Value { lock.withLock { stored } }

    func mutate(_ body: (inout Value) -> Void) { lock.withLock { body(&stored) } }
}
