import AgentAPI
import Foundation
import Images
import RegistryTestSupport
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

private let isRoot = getuid() == 0
private let hasRegistry = FileManager.default.isExecutableFile(atPath: "/usr/bin/docker-registry")

/// Services run from images on a real agent, pulled from Debian's docker-registry over TLS on
/// loopback, with images the tests build from busybox-static and push.
@Suite(.dedicatedThread, .serialized, .enabled(if: isRoot, "needs root: agentd launches services in namespaces and cgroups"),
       .enabled(if: hasRegistry, "needs docker-registry (scripts/setup installs it)"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct ImageAgentTests {
    /// An image whose httpd serves `/www` on $PORT_HTTP: busybox below, the site above.
    static func site(_ files: [String: String], removing removed: [String] = []) throws -> TestImage {
        let busybox = try TestImage.busyboxLayer()
        let www = try TestImage.layer { root in
            try FileManager.default.createDirectory(atPath: root + "/www", withIntermediateDirectories: true)
            for (name, text) in files { try text.write(toFile: root + "/www/" + name, atomically: true, encoding: .utf8) }
            // An OCI whiteout: the file of that name in a lower layer is gone from the image.
            for name in removed { _ = FileManager.default.createFile(atPath: root + "/www/.wh." + name, contents: nil) }
        }
        return try TestImage(layers: [busybox, www], entrypoint: ["/bin/busybox", "httpd", "-f", "-h", "/www"], cmd: ["-p", "8080"],
                             env: ["PATH=/bin", "SITE=image"], workingDir: "/www")
    }

    /// Two instances of `image`; the command comes from the image, the port from the manifest.
    static func manifest(_ image: String, replicas: Int = 2) -> String {
        """
        {"name": "img", "services": [{"name": "web", "image": "\(image)",
          "command": ["/bin/busybox", "sh", "-c", "exec httpd -f -h /www -p $PORT_HTTP"],
          "replicas": \(replicas), "resources": {"cpu": 0.1, "memory": "32Mi", "pids": 16}, "discovery": {"enabled": false},
          "network": {"ports": [{"name": "http"}]},
          "health": {"http": {"port": "http", "path": "/index.html"}, "interval": "500ms", "timeout": "400ms"},
          "update": {"maxParallel": 1, "minHealthyTime": "0s", "healthyDeadline": "30s", "progressDeadline": "60s"}}]}
        """
    }

    func agent(_ registry: TestRegistry, grace: String = "1h") throws -> DevAgent {
        try DevAgent(extraArguments: ["--registry-ca", registry.caFile, "--image-grace", grace])
    }

    func bodies(_ agent: DevAgent, path: String = "/index.html") throws -> [String] {
        try agent.get("/v1/instances?application=img", as: [InstanceInfo].self).filter { $0.desired == .run && $0.status == .healthy }
            .compactMap { $0.ports.first?.number }
            .map { try UnixHTTP.request("GET", path, port: $0) }
            .map { "\($0.status) \($0.body.trimmingCharacters(in: .whitespacesAndNewlines))" }
    }

    /// The overlays mounted for this agent's instances: their lower directories, per mount point.
    func overlays(_ agent: DevAgent) throws -> [String: String] {
        let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        var found: [String: String] = [:]
        for line in mounts.split(separator: "\n") where line.contains(" - overlay ") && line.contains(agent.stateDirectory) {
            let fields = line.split(separator: " ")
            let options = line.split(separator: " - overlay ").last?.split(separator: " ").last ?? ""
            let lower = options.split(separator: ",").first { $0.hasPrefix("lowerdir=") } ?? ""
            found[String(fields[4])] = String(lower)
        }
        return found
    }

    @Test func aTagIsPinnedAtApplyAndTheInstancesShareTheImagesLayers() async throws {
        try await withRegistry { registry in
            let first = try await registry.push(Self.site(["index.html": "one"]), to: "site", tag: "1")
            let agent = try agent(registry)
            defer { agent.shutdown() }
            let apply = try agent.deployctl("apply", "-f", "-", "--timeout", "90s", input: Self.manifest("\(registry.host)/site:1"))
            #expect(apply.status == 0, "\(apply)\n\(agent.agentLog())")
            var application = try agent.get("/v1/applications/img?detail=true", as: ApplicationInfo.self)
            #expect(application.manifest?.contains("\(registry.host)/site:1@\(first)") == true, "\(application.manifest ?? "")")
            #expect(try bodies(agent) == ["200 one", "200 one"])
            // The pull shows as the starting instances' message, in their events and the cluster's.
            let pulling = "pulling \(registry.host)/site:1@\(first): "
            let instanceEvents = try agent.get("/v1/instances?application=img", as: [InstanceInfo].self).flatMap(\.events).map(\.message)
            #expect(instanceEvents.contains { $0.hasPrefix(pulling) && $0.contains(" MB") }, "\(instanceEvents)")
            let clusterEvents = try agent.get("/v1/events", as: [Components.Schemas.ClusterEvent].self).filter { $0.kind == "instance.status" }
            #expect(clusterEvents.contains { $0.message.hasPrefix("starting: " + pulling) }, "\(clusterEvents.map(\.message))")

            // One copy of the layers: both overlays stack the same two unpacked directories.
            // Both as mounted when both run: under a loaded CI an instance was seen between a
            // health-check restart's unmount and mount (400 ms probe timeout), one overlay only.
            var mounted: [String: String] = [:]
            try agent.waitUntil("both instances' overlays to be mounted", timeout: 30) {
                mounted = try overlays(agent)
                return mounted.count == 2
            }
            #expect(mounted.count == 2 && Set(mounted.values).count == 1, "\(mounted)")
            let layers = try FileManager.default.contentsOfDirectory(atPath: agent.stateDirectory + "/state/images/layers/sha256")
                .filter { !$0.hasPrefix(".") && !$0.hasSuffix(".lock") }
            #expect(layers.count == 2, "\(layers)")
            let described = try agent.deployctl("describe", "service", "img/web")
            #expect(described.output.contains("image \(registry.host)/site:1  digest \(first)"), "\(described.output)")
            let listed = try agent.deployctl("images")
            #expect(listed.status == 0 && listed.output.contains("\(registry.host)/site:1") && listed.output.contains("img.web.0") && listed.output.contains("img.web.1"), "\(listed)")

            // The same manifest while the tag still names the same image: no new revision.
            #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: Self.manifest("\(registry.host)/site:1")).status == 0)
            #expect(try agent.get("/v1/applications/img", as: ApplicationInfo.self).revision == 1)
            // The tag pushed again: the running revision is untouched until the next apply,
            // which resolves the tag anew and rolls the new image out.
            let second = try await registry.push(Self.site(["index.html": "one, again"]), to: "site", tag: "1")
            sleep(1)
            #expect(try bodies(agent) == ["200 one", "200 one"])
            let again = try agent.deployctl("apply", "-f", "-", "--timeout", "90s", input: Self.manifest("\(registry.host)/site:1"))
            #expect(again.status == 0, "\(again)\n\(agent.agentLog())")
            application = try agent.get("/v1/applications/img?detail=true", as: ApplicationInfo.self)
            #expect(application.revision == 2 && application.manifest?.contains("@\(second)") == true, "\(application.manifest ?? "")")
            #expect(try bodies(agent) == ["200 one, again", "200 one, again"])
        }
    }

    @Test func aPlainHTTPRegistryOnThisMachineServesImagesAndTheFlagIsChecked() async throws {
        // A malformed --registry-plain-http stops agentd with the flag and what to write.
        // "myregistry" would name a Docker Hub account in an image, never a registry.
        for value in ["http://registry.lan:5000", "myregistry"] {
            let refused = try DevAgent(extraArguments: ["--registry-plain-http", value], waits: false)
            defer { refused.shutdown() }
            try refused.waitUntil("agentd to exit", timeout: 20) { refused.process?.isRunning == false }
            #expect(refused.agentLog().contains("--registry-plain-http \"\(value)\": give a registry as images name it"), "\(refused.agentLog())")
        }
        // A developer's registry:2 on this machine speaks plain HTTP: the apply resolves the tag
        // through it and the instances run, with no CA and no flag (listing another registry
        // changes nothing for it).
        try await withRegistry(plainHTTP: true) { registry in
            let digest = try await registry.push(try Self.site(["index.html": "plain\n"]), to: "dev/site", tag: "1")
            let agent = try DevAgent(extraArguments: ["--registry-plain-http", "registry.lan:5000"])
            defer { agent.shutdown() }
            let apply = try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: Self.manifest("\(registry.host)/dev/site:1"))
            #expect(apply.status == 0, "\(apply)\n\(agent.agentLog())")
            #expect(try bodies(agent) == ["200 plain", "200 plain"])
            let described = try agent.deployctl("describe", "service", "img/web")
            #expect(described.output.contains("image \(registry.host)/dev/site:1  digest \(digest)"), "\(described.output)")
        }
    }

    @Test func theImageExampleRunsFromARegistryOnThisMachine() async throws {
        // manifests/image.json names localhost:5000, where a user pushes busybox; here the test
        // registry (plain HTTP, as registry:2 is) holds a busybox image, at a port of its own.
        try await withRegistry(plainHTTP: true) { registry in
            _ = try await registry.push(try TestImage(layers: [try TestImage.busyboxLayer()]), to: "examples/busybox", tag: "1")
            let example = try String(contentsOfFile: DevAgent.repositoryRoot + "/manifests/image.json", encoding: .utf8)
            #expect(example.contains("\"localhost:5000/examples/busybox:1\""))
            let agent = try DevAgent()
            defer { agent.shutdown() }
            let apply = try agent.deployctl(
                "apply", "-f", "-", "--timeout", "90s", input: example.replacingOccurrences(of: "localhost:5000", with: registry.host))
            #expect(apply.status == 0, "\(apply)\n\(agent.agentLog())")
            let pages = try agent.get("/v1/instances?application=hello-image", as: [InstanceInfo].self)
                .filter { $0.status == .healthy }.compactMap { $0.ports.first?.number }
                .map { try UnixHTTP.request("GET", "/index.html", port: $0).body }
            #expect(pages.count == 2 && pages.allSatisfy { $0.contains("run from an image") }, "\(pages)")
        }
    }

    @Test func theImagesConfigRunsWhatTheManifestLeavesOut() async throws {
        try await withRegistry { registry in
            // No command, working directory or user in the manifest: the image's entrypoint and
            // cmd run, in its working directory, as its user and group, with its env under the
            // manifest's.
            let image = try TestImage(
                layers: [try TestImage.busyboxLayer(), try TestImage.layer { root in
                    try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
                    try "root:x:0:0::/root:/bin/sh\nsite:x:4321:4321::/srv:/bin/sh\n".write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
                    try "root:x:0:\nsite:x:4321:\nweb:x:8765:\n".write(toFile: root + "/etc/group", atomically: true, encoding: .utf8)
                    try FileManager.default.createDirectory(atPath: root + "/srv", withIntermediateDirectories: true)
                }],
                entrypoint: ["/bin/busybox", "sh", "-c"], cmd: ["echo \"$SITE $NAME $(pwd) $(/bin/busybox id -u):$(/bin/busybox id -g)\"; /bin/busybox touch /x || echo read-only; exec /bin/busybox sleep 600"],
                env: ["PATH=/bin", "SITE=image", "NAME=image"], workingDir: "/srv", user: "site:web")
            _ = try await registry.push(image, to: "conf", tag: "1")
            let agent = try agent(registry)
            defer { agent.shutdown() }
            let manifest = """
                {"name": "img", "services": [{"name": "conf", "image": "\(registry.host)/conf:1", "env": {"NAME": "manifest"},
                  "readOnlyRootfs": true, "resources": {"cpu": 0.1, "memory": "32Mi", "pids": 16}, "discovery": {"enabled": false}}]}
                """
            let apply = try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest)
            #expect(apply.status == 0, "\(apply)\n\(agent.agentLog())")
            try agent.waitUntil("the service has logged", timeout: 20) {
                try agent.deployctl("logs", "img/conf").output.contains("read-only")
            }
            let logs = try agent.deployctl("logs", "img/conf").output
            #expect(logs.contains("image manifest /srv 4321:8765"), "\(logs)")
        }
    }

    @Test func anUpgradeToAnotherTagRollsOutAndTheOldImageIsCollected() async throws {
        try await withRegistry { registry in
            // Tag 2 is tag 1 and a layer above that changes index.html and removes old.html with
            // a whiteout.
            let one = try Self.site(["index.html": "one", "old.html": "old"])
            _ = try await registry.push(one, to: "site", tag: "1")
            let two = try TestImage(layers: one.layers + [try TestImage.layer { root in
                try FileManager.default.createDirectory(atPath: root + "/www", withIntermediateDirectories: true)
                try "two".write(toFile: root + "/www/index.html", atomically: true, encoding: .utf8)
                _ = FileManager.default.createFile(atPath: root + "/www/.wh.old.html", contents: nil)
            }], entrypoint: ["/bin/busybox", "httpd", "-f", "-h", "/www"])
            _ = try await registry.push(two, to: "site", tag: "2")
            let agent = try agent(registry, grace: "1s")
            defer { agent.shutdown() }
            #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "90s", input: Self.manifest("\(registry.host)/site:1")).status == 0, "\(agent.agentLog())")
            #expect(try bodies(agent, path: "/old.html") == ["200 old", "200 old"])

            let upgrade = try agent.deployctl("upgrade", "img/web", "--image", "\(registry.host)/site:2", "--timeout", "90s")
            #expect(upgrade.status == 0, "\(upgrade)\n\(agent.agentLog())")
            #expect(try bodies(agent) == ["200 two", "200 two"])
            #expect(try bodies(agent, path: "/old.html").allSatisfy { $0.hasPrefix("404") })
            // The replaced instances' roots went with them: two overlays, two instance directories.
            let running = Set(try agent.get("/v1/instances?application=img", as: [InstanceInfo].self).filter { $0.desired == .run }.map(\.id))
            try agent.waitUntil("the old instances' roots are gone", timeout: 20) {
                let roots = try FileManager.default.contentsOfDirectory(atPath: agent.stateDirectory + "/state/images/instances")
                let mounted = try overlays(agent).count
                return Set(roots) == running && mounted == 2
            }

            // Tag 1's image is no instance's any more: it goes after the grace period, and the
            // layers tag 2 shares with it stay.
            let store = agent.stateDirectory + "/state/images/layers/sha256"
            try agent.waitUntil("tag 1's image is collected", timeout: 30) {
                let listed = try agent.deployctl("images", "-o", "json").output
                return !listed.contains("site:1@") && listed.contains("site:2@")
            }
            // Tag 2's image is in use: several grace periods later it is all still there.
            sleep(3)
            #expect(try agent.deployctl("images").output.contains("site:2"))
            let kept = try FileManager.default.contentsOfDirectory(atPath: store).filter { !$0.hasPrefix(".") && !$0.hasSuffix(".lock") }
            #expect(Set(kept) == Set(two.layerDigests.map(\.hex)), "\(kept)")
            #expect(try bodies(agent) == ["200 two", "200 two"])
        }
    }

    @Test func aRegistryThatIsDownRefusesTheApplyAndFailsThePullWithTheReason() async throws {
        try await withRegistry { registry in
            let pinned = try await registry.push(Self.site(["index.html": "one"]), to: "site", tag: "1")
            let agent = try agent(registry)
            defer { agent.shutdown() }
            registry.kill()

            // A tag cannot be resolved: the apply is refused at the image, and nothing is made.
            let refused = try agent.deployctl("apply", "-f", "-", "--timeout", "30s", input: Self.manifest("\(registry.host)/site:1"))
            #expect(refused.status != 0, "\(refused)")
            #expect(refused.output.contains("services[0].image") || refused.error.contains("services[0].image"), "\(refused)")
            #expect((refused.output + refused.error).contains(registry.host), "\(refused)")
            let (status, _) = try UnixHTTP.request("GET", "/v1/applications/img", socket: agent.socket)
            #expect(status == 404)

            // A pinned image needs no resolution; each node's pull is retried, then the instance
            // fails with the reason.
            _ = try agent.deployctl("apply", "-f", "-", "--no-wait", input: Self.manifest("\(registry.host)/site@\(pinned)", replicas: 1))
            try agent.waitUntil("the pull has failed", timeout: 90) {
                let instances = try agent.get("/v1/instances?application=img", as: [InstanceInfo].self)
                return instances.contains { instance in instance.events.contains { $0.status == .failed && $0.message.contains(registry.host) } }
            }
            let events = try agent.get("/v1/instances?application=img", as: [InstanceInfo].self).flatMap(\.events).map(\.message)
            #expect(events.contains { $0.contains("could not start: ") && $0.contains("pull \(registry.host)/site") }, "\(events)")
        }
    }
}
