import AgentAPI
import Foundation
import NetnsHarness
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Discovery across hosts: three servers and a client in network namespaces, three instances on
/// three of them; every agent answers all three over DNS (its own, on 127.0.0.1:8600 in its
/// namespace; the client's from a server's catalog) and HTTP, an instance that dies leaves
/// every agent's answers, and one that turns unhealthy leaves them and comes back once healthy.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))
struct NetnsDiscoveryTests {
    static let manifest = """
        {"name": "site", "services": [{"name": "web", "replicas": 3,
          "command": ["/bin/sh", "-c", "echo up > /tmp/www/index.html && exec httpd -f -p \\"$PORT_HTTP\\" -h /tmp/www"],
          "rootfs": "/var/lib/flotilla/images/busybox", "readOnlyRootfs": true,
          "mounts": [{"type": "tmpfs", "target": "/tmp/www", "size": "1Mi"}],
          "resources": {"cpu": 0.05, "memory": "16Mi", "pids": 16},
          "network": {"ports": [{"name": "http"}]},
          "health": {"http": {"port": "http", "path": "/index.html"}, "interval": "1s", "timeout": "500ms"},
          "restart": {"policy": "never"},
          "placement": {"distinctNodes": true},
          "discovery": {"tags": ["v1"]}},
         {"name": "api", "replicas": 1,
          "command": ["/bin/sh", "-c", "echo up > /tmp/www/index.html && exec httpd -f -p \\"$PORT_HTTP\\" -h /tmp/www"],
          "rootfs": "/var/lib/flotilla/images/busybox", "readOnlyRootfs": true,
          "mounts": [{"type": "tmpfs", "target": "/tmp/www", "size": "1Mi"}],
          "resources": {"cpu": 0.05, "memory": "16Mi", "pids": 16},
          "network": {"ports": [{"name": "http"}]},
          "health": {"http": {"port": "http", "path": "/index.html"}, "interval": "1s", "timeout": "500ms", "unhealthyThreshold": 1},
          "restart": {"policy": "always", "initialDelay": "2s"}}]}
        """

    /// The A records of `name` as host `host`'s agent answers them, sorted.
    static func addresses(_ network: HostNetwork, host: Int, _ name: String = "web.service.flotilla") throws -> [String] {
        let answer = try network.run(host: host, arguments: ["dig", "@127.0.0.1", "-p", "8600", name, "A", "+short", "+time=1", "+tries=1"])
        guard answer.status == 0 else { throw TestFailure("dig on host \(host): \(answer.stdout)\(answer.stderr)") }
        return answer.stdout.split(separator: "\n").map(String.init).sorted()
    }

    @Test("every agent, the client's too, answers every host's instances, drops one that dies, and drops one that fails its check until it passes again")
    func everyAgentAnswersTheWholeCatalog() throws {
        let network = try HostNetwork(hostCount: 4)
        let (root, servers) = NetnsClusterTests.agents(4)
        defer { NetnsClusterTests.cleanUp(network, root: root, servers) }
        try NetnsClusterTests.form(network, servers, servers: 3)
        let applied = try servers[0].deployctl(["apply", "-f", "-", "--timeout", "90s"], input: Self.manifest)
        #expect(applied.status == 0, "\(applied.output)")
        var instances: [Components.Schemas.InstanceInfo] = []
        try NetnsClusterTests.waitUntil("three instances with their processes", timeout: 60) {
            let (_, body) = try UnixHTTP.request("GET", "/v1/instances?application=site", socket: servers[0].socket)
            instances = try JSONDecoder().decode([Components.Schemas.InstanceInfo].self, from: Data(body.utf8)).filter { $0.mainPID != nil }
            return instances.filter { $0.service == "web" }.count == 3 && instances.count == 4
        }
        let api = try #require(instances.first { $0.service == "api" })
        instances = instances.filter { $0.service == "web" }
        let hostAddresses = try instances.map { try network.address(of: Int($0.node.dropFirst()) ?? 0) }.sorted()
        #expect(Set(hostAddresses).count == 3)
        for server in servers {
            try NetnsClusterTests.waitUntil("host \(server.host) to answer all three hosts\n\(server.log)", timeout: 60) {
                try Self.addresses(network, host: server.host) == hostAddresses
            }
            let (status, body) = try UnixHTTP.request("GET", "/v1/catalog/service/web?tag=v1", socket: server.socket)
            #expect(status == 200)
            let entries = try JSONDecoder().decode([Components.Schemas.CatalogInstanceInfo].self, from: Data(body.utf8))
            #expect(entries.map(\.address).sorted() == hostAddresses, "\(body)")
        }

        // One instance dies for good (restart never): gone from every agent's answers.
        let victim = try #require(instances.first)
        let victimAddress = try network.address(of: Int(victim.node.dropFirst()) ?? 0)
        let killed = Date()
        kill(try #require(victim.mainPID), SIGKILL)
        for server in servers {
            try NetnsClusterTests.waitUntil("host \(server.host) to drop the dead instance", timeout: 30) {
                try Self.addresses(network, host: server.host) == hostAddresses.filter { $0 != victimAddress }
            }
        }
        print("netns discovery: the killed instance left every agent's DNS within \(Int(Date().timeIntervalSince(killed) * 1000)) ms")

        // Another turns unhealthy (its page gone, seen through its root): it leaves every
        // agent's answers, and comes back once its restart passes its check again.
        let apiAddress = try network.address(of: Int(api.node.dropFirst()) ?? 0)
        for server in servers {
            try NetnsClusterTests.waitUntil("host \(server.host) to answer api", timeout: 30) {
                try Self.addresses(network, host: server.host, "api.service.flotilla") == [apiAddress]
            }
        }
        try FileManager.default.removeItem(atPath: "/proc/\(try #require(api.mainPID))/root/tmp/www/index.html")
        var gone = Set<Int>()
        var back = Set<Int>()
        try NetnsClusterTests.waitUntil("every agent to drop the unhealthy instance, then answer it again", timeout: 60) {
            for server in servers {
                let answer = try Self.addresses(network, host: server.host, "api.service.flotilla")
                if answer.isEmpty { gone.insert(server.host) } else if gone.contains(server.host) { back.insert(server.host) }
            }
            return back.count == servers.count
        }
        for server in servers {
            let (_, body) = try UnixHTTP.request("GET", "/v1/catalog/service/web", socket: server.socket)
            #expect(!body.contains(victim.id), "host \(server.host) still lists \(victim.id)")
        }
    }
}
