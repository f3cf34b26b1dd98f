import AgentAPI
import Foundation
import NetnsHarness
import RegistryTestSupport
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

private let isRoot = getuid() == 0
private let hasRegistry = FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-registry")

/// Images across hosts: a registry on one network namespace, a server and a client agent on two
/// others, each node pulling what is placed on it.
@Suite(.dedicatedThread, .serialized, .enabled(if: isRoot, "needs root: network namespaces, cgroups, mounts"),
       .enabled(if: hasRegistry, "needs docker-registry (scripts/setup installs it)"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct NetnsImageTests {
    static func manifest(_ image: String) -> String {
        """
        {"name": "img", "services": [{"name": "web", "image": "\(image)", "replicas": 2,
          "command": ["/bin/busybox", "sh", "-c", "exec httpd -f -h /www -p $PORT_HTTP"],
          "resources": {"cpu": 0.05, "memory": "16Mi", "pids": 16}, "network": {"ports": [{"name": "http"}]},
          "health": {"http": {"port": "http", "path": "/index.html"}, "interval": "1s", "timeout": "1s"},
          "placement": {"spread": [{"attribute": "node.name"}]}, "discovery": {"enabled": false},
          "update": {"maxParallel": 1, "minHealthyTime": "0s", "healthyDeadline": "60s", "progressDeadline": "90s"}}]}
        """
    }

    @Test("every node pulls the revision's image from a registry on another host, and an upgrade to another tag reaches each")
    func everyNodePullsTheImageOfTheRevision() async throws {
        try await withRegistry { registry in
            let first = try await registry.push(ImageAgentTests.site(["index.html": "one"]), to: "site", tag: "1")
            try await registry.push(ImageAgentTests.site(["index.html": "two"]), to: "site", tag: "2")
            let network = try HostNetwork(hostCount: 3)
            let (root, agents) = NetnsClusterTests.agents(2)
            defer { NetnsClusterTests.cleanUp(network, root: root, agents) }
            // The pushed images, served on host 3's address from the same storage.
            let address = try network.address(of: 3)
            try network.start(host: 3, arguments: ["/usr/bin/docker-registry", "serve", registry.configuration(serving: address, port: 5000)],
                              logPath: registry.directory + "/netns-registry.log")
            try NetnsClusterTests.waitUntil("the registry on host 3", timeout: 20) {
                try network.run(host: 1, arguments: ["curl", "-s", "--cacert", registry.caFile, "https://\(address):5000/v2/"]).status == 0
            }
            // h1 a server, h2 a client: the server resolves the tag, each node pulls for itself.
            try NetnsClusterTests.form(network, agents, servers: 1, extra: ["--registry-ca", registry.caFile])
            let applied = try agents[1].deployctl(["apply", "-f", "-", "--timeout", "120s"], timeout: 150, input: Self.manifest("\(address):5000/site:1"))
            #expect(applied.status == 0, "\(applied.output)\n\(agents[0].log)\n\(agents[1].log)")

            func bodies() throws -> [String: String] {
                let instances = try NetnsRolloutTests.get("/v1/instances?application=img", from: agents[0], as: [InstanceInfo].self)
                    .filter { $0.desired == .run && $0.status == .healthy }
                var answers: [String: String] = [:]
                for instance in instances {
                    let host = Int(instance.node.dropFirst()) ?? 0
                    let port = instance.ports.first?.number ?? 0
                    let answer = try network.run(host: 1, arguments: ["curl", "-s", "http://\(try network.address(of: host)):\(port)/index.html"])
                    answers[instance.node] = answer.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                }
                return answers
            }
            let served = try bodies()
            #expect(served == ["h1": "one", "h2": "one"], "\(served)")
            let manifest = try NetnsRolloutTests.get("/v1/applications/img?detail=true", from: agents[1], as: ApplicationInfo.self).manifest ?? ""
            #expect(manifest.contains("\(address):5000/site:1@\(first)"), "\(manifest)")
            // Each agent lists its own node's images, the client's too (it answers this itself
            // rather than relay it to a server): one image, used by the one instance placed there.
            for agent in agents {
                let list = try NetnsRolloutTests.get("/v1/images", from: agent, as: Components.Schemas.ImageList.self)
                // Written as every answer of the API is: slashes as they are, keys sorted.
                let raw = try UnixHTTP.request("GET", "/v1/images", socket: agent.socket).body
                #expect(!raw.contains("\\/") && raw.hasPrefix("{\"images\":"), "h\(agent.host): \(raw)")
                #expect(list.node == "h\(agent.host)", "\(list)")
                #expect(list.images.map(\.reference) == ["\(address):5000/site:1@\(first)"], "h\(agent.host): \(list)")
                let users = list.images.first?.instances ?? []
                let placed = try NetnsRolloutTests.get("/v1/instances?application=img", from: agents[0], as: [InstanceInfo].self)
                    .filter { $0.desired == .run && $0.node == "h\(agent.host)" }.map(\.id)
                #expect(users == placed && users.count == 1, "h\(agent.host): \(users) against \(placed)")
                let images = try agent.deployctl(["images"])
                #expect(images.status == 0 && images.output.contains("\(address):5000/site:1"), "h\(agent.host): \(images.output)")
            }

            let upgraded = try agents[0].deployctl(["upgrade", "img/web", "--image", "\(address):5000/site:2", "--timeout", "120s"], timeout: 150)
            #expect(upgraded.status == 0, "\(upgraded.output)\n\(agents[0].log)\n\(agents[1].log)")
            try NetnsClusterTests.waitUntil("both nodes serve tag 2", timeout: 30) { try bodies() == ["h1": "two", "h2": "two"] }
        }
    }
}
