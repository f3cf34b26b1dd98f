import AgentAPI
import Foundation
import NetnsHarness
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Rollouts across hosts: six instances over three servers (network namespaces on a bridge)
/// replaced two at a time while clients on a fourth host call them through its local proxy
/// and through its DNS; canaries, promotion, pause and resume, a failing revision reverted and
/// an undo, all under that load without one failed request. Then the faults: the leader killed
/// mid-rollout, a node drained mid-rollout, and a revision that cannot be placed.
@Suite(.dedicatedThread, .serialized, .timeLimit(.minutes(10)))
struct NetnsRolloutTests {
    typealias Server = NetnsClusterTests.Server

    /// The web service as revision `version` writes it: busybox httpd serving the version.
    /// Its check and drain delay leave room for two cores shared by four debug-built agents
    /// and the clients: the only failed requests seen (2 in 28 runs, both while another
    /// benchmark loaded the machine) had an instance die with requests in flight, as one does
    /// when 3 checks of 400ms in a row time out (restarted at once) or when a client's agent
    /// learns a deregistration later than the 1s drain delay. With 2s, one DNS request in 598
    /// failed in a CI run (stop 49): the client agent on host 4 still named an instance at least
    /// 3s after the leader decided its stop, while other suites loaded the cores; its catalog
    /// comes relayed from a server. The drain delay is the operator's answer to that lag (as
    /// Nomad's shutdown_delay, Kubernetes' preStop sleep); 3s leaves it room.
    static func site(
        _ version: String, healthPath: String = "/index.html", maxSurge: Int = 0, minHealthyTime: String = "1s",
        canaries: Int = 0, autoPromote: Bool = false, nodes: [String] = ["h1", "h2", "h3"],
        healthyDeadline: String = "15s", progressDeadline: String = "30s", autoRevert: Bool = true
    ) -> String {
        let command = UpstreamProxyTests.jsonString(#"echo "$VERSION" > /tmp/www/index.html && exec httpd -f -p "$PORT_HTTP" -h /tmp/www"#)
        let names = nodes.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            {"name": "site", "services": [{"name": "web", "replicas": 6, "env": {"VERSION": "\(version)"},
              "command": ["/bin/sh", "-c", \(command)],
              "rootfs": "/var/lib/flotilla/images/busybox", "readOnlyRootfs": true,
              "mounts": [{"type": "tmpfs", "target": "/tmp/www", "size": "1Mi"}],
              "resources": {"cpu": 0.05, "memory": "16Mi", "pids": 16},
              "network": {"ports": [{"name": "http"}]},
              "health": {"http": {"port": "http", "path": "\(healthPath)"}, "interval": "1s", "timeout": "1s", "unhealthyThreshold": 5},
              "placement": {"constraints": [{"attribute": "node.name", "operator": "in", "values": [\(names)]}], "spread": [{"attribute": "node.name"}]},
              "discovery": {"drainDelay": "3s"},
              "update": {"maxParallel": 2, "maxSurge": \(maxSurge), "minHealthyTime": "\(minHealthyTime)", "healthyDeadline": "\(healthyDeadline)",
                "progressDeadline": "\(progressDeadline)", "autoRevert": \(autoRevert), "canaries": \(canaries), "autoPromote": \(autoPromote)}}]}
            """
    }

    /// A caller on host 4 with the web service as an upstream on 127.0.0.1:9000 of that host.
    static let caller = """
        {"name": "caller", "services": [{"name": "caller", "command": ["/bin/sleep", "100000"], "user": "nobody",
          "rootfs": "/var/lib/flotilla/images/busybox", "resources": {"cpu": 0.01, "memory": "8Mi", "pids": 4},
          "network": {"mode": "host"},
          "placement": {"constraints": [{"attribute": "node.name", "operator": "=", "value": "h4"}]},
          "upstreams": [{"service": "web", "localPort": 9000}]}]}
        """

    static func get<Answer: Decodable>(_ path: String, from server: Server, as type: Answer.Type) throws -> Answer {
        let (status, body) = try UnixHTTP.request("GET", path, socket: server.socket)
        guard status == 200 else { throw TestFailure("GET \(path) on host \(server.host) answered \(status): \(body)") }
        return try JSONDecoder().decode(Answer.self, from: Data(body.utf8))
    }

    /// The site's instances wanted running.
    static func running(_ server: Server) throws -> [InstanceInfo] {
        try get("/v1/instances?application=site", from: server, as: [InstanceInfo].self).filter { $0.desired == .run }
    }

    static func describe(_ instances: [InstanceInfo]) -> String {
        instances.map { "\($0.id) r\($0.revision) \($0.node) \($0.status)" }.joined(separator: ", ")
    }

    /// Every wanted instance is of `revision` and healthy, on `nodes` and each of them, and
    /// the older ones stop within their drain delay (a rollout succeeds once the last old
    /// instance is told to stop).
    static func expectRolledOut(_ server: Server, revision: Int, nodes: [String] = ["h1", "h2", "h3"], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let wanted = try running(server)
        #expect(wanted.count == 6 && wanted.allSatisfy { $0.revision == revision && $0.status == .healthy }, "\(describe(wanted))", sourceLocation: sourceLocation)
        #expect(Set(wanted.map(\.node)) == Set(nodes), "\(describe(wanted))", sourceLocation: sourceLocation)
        var old: [InstanceInfo] = []
        do {
            try NetnsClusterTests.waitUntil("the older instances to stop", timeout: 15) {
                old = try get("/v1/instances?application=site", from: server, as: [InstanceInfo].self)
                    .filter { $0.revision != revision && [.pending, .starting, .running, .healthy, .unhealthy].contains($0.status) }
                return old.isEmpty
            }
        } catch {
            Issue.record("older instances still run: \(describe(old))", sourceLocation: sourceLocation)
        }
    }

    /// Waits until both clients' recent answers all come from `version`.
    static func expectServed(_ version: String, by loops: [RequestLoop]) throws {
        for loop in loops {
            try loop.waitForSuccesses(20)
            try NetnsClusterTests.waitUntil("\(loop.name) clients to get only version \(version) (\(loop.lines.suffix(3)))", timeout: 20) {
                loop.lines.suffix(10).allSatisfy { $0 == "ok \(version)" }
            }
        }
    }

    @Test("six instances on three hosts roll two at a time under load through the proxy and DNS, with canaries, pause, revert and undo, and no request fails")
    func rolloutsUnderLoadLoseNoRequest() throws {
        let network = try HostNetwork(hostCount: 4)
        let (root, agents) = NetnsClusterTests.agents(4)
        var loops: [RequestLoop] = []
        defer {
            for loop in loops { loop.stop() }
            NetnsClusterTests.cleanUp(network, root: root, agents)
        }
        try NetnsClusterTests.form(network, agents, servers: 3)
        let server = agents[0]
        func apply(_ manifest: String, _ extra: String...) throws -> (status: Int32, output: String) {
            try server.deployctl(["apply", "-f", "-", "--timeout", "120s"] + extra, timeout: 150, input: manifest)
        }
        let first = try apply(Self.site("1"))
        #expect(first.status == 0, "\(first.output)\n\(server.log)")
        let called = try apply(Self.caller)
        #expect(called.status == 0, "\(called.output)")
        try Self.expectRolledOut(server, revision: 1)
        loops = [
            try RequestLoop.throughProxy(network, host: 4, port: 9000, path: "/index.html", directory: agents[3].directory),
            try RequestLoop.throughDNS(network, host: 4, service: "web", path: "/index.html", directory: agents[3].directory),
        ]
        try Self.expectServed("1", by: loops)

        // A plain rolling upgrade.
        let second = try apply(Self.site("2"))
        #expect(second.status == 0, "\(second.output)")
        try Self.expectRolledOut(server, revision: 2)
        try Self.expectServed("2", by: loops)

        // One canary beside the six, until promoted.
        let canary = try apply(Self.site("3", canaries: 1))
        #expect(canary.status == 0 && canary.output.contains("Canaries of site revision 3 are up; the rollout waits"), "\(canary.output)")
        let beside = try Self.running(server)
        #expect(beside.filter { $0.revision == 2 }.count == 6 && beside.filter { $0.revision == 3 }.count == 1, "\(Self.describe(beside))")
        let promoted = try server.deployctl(["rollout", "promote", "site"])
        #expect(promoted.status == 0, "\(promoted.output)")
        let afterPromotion = try server.deployctl(["rollout", "status", "site", "--timeout", "120s"], timeout: 150)
        #expect(afterPromotion.status == 0 && afterPromotion.output.contains("rollout succeeded"), "\(afterPromotion.output)")
        try Self.expectRolledOut(server, revision: 3)

        // Two canaries that promote themselves.
        let automatic = try apply(Self.site("4", canaries: 2, autoPromote: true))
        #expect(automatic.status == 0, "\(automatic.output)")
        let promotedItself = try Self.get("/v1/applications/site", from: server, as: ApplicationInfo.self).rollout
        #expect(promotedItself?.phase == .succeeded && promotedItself?.promoted == true, "\(String(describing: promotedItself))")
        try Self.expectRolledOut(server, revision: 4)

        // Paused after the first two, resumed.
        let slow = try server.deployctl(["apply", "-f", "-", "--no-wait"], input: Self.site("5", minHealthyTime: "3s"))
        #expect(slow.status == 0, "\(slow.output)")
        let paused = try server.deployctl(["rollout", "pause", "site"])
        #expect(paused.status == 0, "\(paused.output)")
        sleep(6)
        let held = try Self.running(server)
        #expect(held.filter { $0.revision == 4 }.count >= 4 && held.count == 6, "a paused rollout went on: \(Self.describe(held))")
        #expect(try server.deployctl(["rollout", "status", "site", "--no-follow"]).status == 6)
        #expect(try server.deployctl(["rollout", "resume", "site"]).status == 0)
        let resumed = try server.deployctl(["rollout", "status", "site", "--timeout", "120s"], timeout: 150)
        #expect(resumed.status == 0, "\(resumed.output)")
        try Self.expectRolledOut(server, revision: 5)
        try Self.expectServed("5", by: loops)

        // A revision that never passes its check fails at its deadline and goes back to 5.
        let bad = try apply(Self.site("6", healthPath: "/missing"))
        #expect(bad.status == 1 && bad.output.contains("the rollout of revision 6 failed and was reverted"), "\(bad.output)")
        #expect(bad.output.contains("not healthy after 15s (its healthyDeadline): ") && bad.output.contains("failed health check: HTTP 404"), "\(bad.output)")
        let reverted = try server.deployctl(["rollout", "status", "site", "--timeout", "120s"], timeout: 150)
        #expect(reverted.status == 5 && reverted.output.contains("rollout succeeded (reverting revision 6)"), "\(reverted.output)")
        let afterRevert = try Self.get("/v1/applications/site", from: server, as: ApplicationInfo.self)
        #expect(afterRevert.revision == 7 && afterRevert.rollout?.revertOf == 6, "\(String(describing: afterRevert.rollout))")
        try Self.expectRolledOut(server, revision: 7)
        try Self.expectServed("5", by: loops)

        // Back to revision 2, as a revision of its own.
        let undo = try server.deployctl(["rollout", "undo", "site", "--to-revision", "2"])
        #expect(undo.status == 0, "\(undo.output)")
        let undone = try server.deployctl(["rollout", "status", "site", "--timeout", "120s"], timeout: 150)
        #expect(undone.status == 0, "\(undone.output)")
        try Self.expectRolledOut(server, revision: 8)
        try Self.expectServed("2", by: loops)

        var anyFailed = false
        for loop in loops {
            let lines = loop.stop()
            anyFailed = anyFailed || lines.contains { !$0.hasPrefix("ok ") }
            let failed = lines.filter { !$0.hasPrefix("ok ") }
            print("netns rollouts: \(lines.count) requests through \(loop.name), \(failed.count) failed")
            #expect(failed.isEmpty, "\(failed.count) of \(lines.count) requests through \(loop.name) failed: \(failed.prefix(10))")
            #expect(lines.count > 200, "too few requests through \(loop.name) to prove anything: \(lines.count)")
        }
        loops = []
        if anyFailed {
            // What the instances went through (those gone too), to place the failures against.
            let events = try Self.get("/v1/events", from: server, as: [Components.Schemas.ClusterEvent].self)
                .filter { event in event.application == "site" && (event.kind != "instance.status" || !["running", "healthy"].contains { event.message.hasPrefix($0) }) }
            let clock = DateFormatter()
            clock.dateFormat = "HH:mm:ss.SSS"
            clock.timeZone = TimeZone(identifier: "UTC")
            for event in events {
                print("\(clock.string(from: Date(timeIntervalSince1970: Double(event.time) / 1000))) \(event.kind) \(event.instance ?? "") \(event.node ?? "") \(event.message)")
            }
        }
    }

    @Test("a rollout goes on under a new leader after the old one is killed, never above replicas + maxSurge; a node drained mid-rollout empties; an unplaceable revision fails at its deadline")
    func rolloutsThroughFaults() throws {
        let network = try HostNetwork(hostCount: 3)
        let (root, servers) = NetnsClusterTests.agents(3)
        defer { NetnsClusterTests.cleanUp(network, root: root, servers) }
        try NetnsClusterTests.form(network, servers, servers: 3)
        let first = try servers[0].deployctl(["apply", "-f", "-", "--timeout", "120s"], timeout: 150, input: Self.site("1", maxSurge: 1))
        #expect(first.status == 0, "\(first.output)\n\(servers[0].log)")

        // The leader is killed once the rollout replaced something; its agent comes back on
        // its state (its instances run on), and whoever leads then finishes the rollout.
        let leader = try #require(NetnsClusterTests.leaderHost(servers))
        let others = servers.filter { $0.host != leader }
        let started = try others[0].deployctl(["apply", "-f", "-", "--no-wait"], input: Self.site("2", maxSurge: 1, minHealthyTime: "2s"))
        #expect(started.status == 0, "\(started.output)")
        let sampler = InstanceCountSampler.start(others)
        try NetnsClusterTests.waitUntil("the rollout's first instance updated", timeout: 60) {
            (try Self.get("/v1/applications/site", from: others[0], as: ApplicationInfo.self).rollout?.updated ?? 0) >= 1
        }
        try network.kill9(host: leader, alone: true)
        try NetnsClusterTests.waitUntil("a new leader", timeout: 30) {
            NetnsClusterTests.leaderHost(others).map { $0 != leader } ?? false
        }
        try network.restart(host: leader)
        let finished = try others[0].deployctl(["rollout", "status", "site", "--timeout", "120s"], timeout: 150)
        #expect(finished.status == 0, "\(finished.output)\n\(others[0].log)")
        let most = sampler.stop()
        #expect(most.count > 0 && most.count <= 7, "\(most.count) instances wanted running at once (replicas 6 + maxSurge 1): \(most.instances)")
        #expect(sampler.samples > 20, "too few samples: \(sampler.samples)")
        try Self.expectRolledOut(others[0], revision: 2)

        // h3 drained while revision 3 rolls out: the rollout ends with all six on h1 and h2.
        let third = try servers[0].deployctl(["apply", "-f", "-", "--no-wait"], input: Self.site("3", maxSurge: 1, minHealthyTime: "2s"))
        #expect(third.status == 0, "\(third.output)")
        try NetnsClusterTests.waitUntil("the rollout's first instance updated", timeout: 60) {
            (try Self.get("/v1/applications/site", from: servers[0], as: ApplicationInfo.self).rollout?.updated ?? 0) >= 1
        }
        let drained = try servers[0].deployctl(["nodes", "drain", "h3", "--deadline", "1m"])
        #expect(drained.status == 0, "\(drained.output)")
        let afterDrain = try servers[0].deployctl(["rollout", "status", "site", "--timeout", "120s"], timeout: 150)
        #expect(afterDrain.status == 0, "\(afterDrain.output)")
        try NetnsClusterTests.waitUntil("h3 emptied", timeout: 60) {
            try Self.running(servers[0]).allSatisfy { $0.node != "h3" && $0.status == .healthy }
        }
        try Self.expectRolledOut(servers[0], revision: 3, nodes: ["h1", "h2"])
        #expect(try servers[0].deployctl(["nodes", "drain", "h3", "--disable"]).status == 0)

        // A revision no node can take: it fails at its progressDeadline, saying why, and the
        // old instances it did not replace keep running.
        let applied = Date()
        let nowhere = try servers[0].deployctl(
            ["apply", "-f", "-", "--no-wait"],
            input: Self.site("4", maxSurge: 2, nodes: ["nowhere"], healthyDeadline: "4s", progressDeadline: "8s", autoRevert: false))
        #expect(nowhere.status == 0, "\(nowhere.output)")
        try NetnsClusterTests.waitUntil("rollout status to say why it waits", timeout: 20) {
            try servers[0].deployctl(["rollout", "status", "site", "--no-follow"]).output.contains("waiting: web: cannot place 2 instances: ")
        }
        let failed = try servers[0].deployctl(["rollout", "status", "site", "--timeout", "60s"], timeout: 90)
        #expect(failed.status == 1 && failed.output.contains("no instance of web updated for 8s (its progressDeadline); 2 cannot be placed"), "\(failed.output)")
        #expect(Date().timeIntervalSince(applied) < 60, "failed after \(Date().timeIntervalSince(applied)) s")
        let kept = try Self.running(servers[0])
        #expect(kept.filter { $0.revision == 3 && $0.status == .healthy }.count == 6, "\(Self.describe(kept))")
    }
}

/// Samples the site's wanted instances on a background thread, from whichever server answers,
/// and keeps the most seen at once.
final class InstanceCountSampler: @unchecked Sendable {
    private let lock = NSLock()
    private var stopping = false
    private var finished = false
    private var most: (count: Int, instances: String) = (0, "")
    private var sampleCount = 0

    static func start(_ servers: [NetnsClusterTests.Server]) -> InstanceCountSampler {
        let sampler = InstanceCountSampler()
        Thread { sampler.run(servers) }.start()
        return sampler
    }

    var samples: Int { lock.withLock { sampleCount } }

    private func run(_ servers: [NetnsClusterTests.Server]) {
        while !lock.withLock({ stopping }) {
            for server in servers {
                guard let wanted = try? NetnsRolloutTests.running(server) else { continue }
                lock.withLock {
                    sampleCount += 1
                    if wanted.count > most.count { most = (wanted.count, NetnsRolloutTests.describe(wanted)) }
                }
                break
            }
            usleep(100_000)
        }
        lock.withLock { finished = true }
    }

    /// Stops sampling and returns the most instances seen at once.
    func stop() -> (count: Int, instances: String) {
        lock.withLock { stopping = true }
        while !lock.withLock({ finished }) { usleep(20_000) }
        return lock.withLock { most }
    }
}
