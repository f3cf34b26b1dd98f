import Foundation
import Glibc
import Manifest
import Testing
import TestSupport

@testable import Supervisor

/// A manifest's service becomes a launch spec, and that spec runs as the manifest says.
// The limit also covers the wait of its one dedicated-thread test for a slot under the full suite.
@Suite(.timeLimit(.minutes(10)))
struct ManifestMappingTests {
    static func service(rootfs: String, script: String) throws -> Service {
        let text = """
            {"name": "a", "services": [{
              "name": "web", "command": ["/bin/sh", "-c", "\(script)"],
              "env": {"LOG": "info"}, "user": "web", "supplementaryGroups": [0],
              "rootfs": "\(rootfs)", "readOnlyRootfs": true,
              "mounts": [{"type": "tmpfs", "target": "/scratch", "size": "1Mi"}],
              "isolation": {"capabilities": ["NET_BIND_SERVICE"], "rlimits": {"nofile": {"soft": 256, "hard": 512}}},
              "resources": {"cpu": 0.5, "memory": "64Mi", "pids": 32},
              "network": {"ports": [{"name": "http"}, {"name": "admin", "port": 9000}]}
            }]}
            """
        return try ManifestDecoder.decode(Array(text.utf8)).services[0]
    }

    @Test func serviceMapsOntoALaunchSpec() throws {
        let service = try Self.service(rootfs: "/srv/rootfs", script: "true")
        let spec = LaunchSpec(service: service, instance: InstanceFacts(instanceID: "web-7", assignedPorts: ["http": 31000],
                                                                         environment: ["NOTIFY_SOCKET": "/run/n"]))
        #expect(spec.instanceID == "web-7")
        #expect(spec.command == ["/bin/sh", "-c", "true"])
        #expect(spec.environment == ["LOG": "info", "PORT_HTTP": "31000", "PORT_ADMIN": "9000", "NOTIFY_SOCKET": "/run/n"])
        #expect(spec.user == UserSpec(user: "web", group: nil, additionalGroups: ["0"]))
        #expect(spec.root == .directory("/srv/rootfs"))
        #expect(spec.readOnlyRoot)
        #expect(spec.mounts == [LaunchMount(kind: .tmpfs(sizeBytes: 1 << 20, mode: 0o1777), target: "/scratch")])
        #expect(spec.namespaces == [.pid, .mount, .uts, .ipc, .cgroup])
        #expect(spec.hostname == "web-7")
        #expect(spec.idMapping == nil)
        #expect(spec.capabilities == [.netBindService])
        #expect(spec.noNewPrivileges)
        #expect(spec.seccomp == .defaultDenyList)
        #expect(spec.resourceLimits == [ResourceLimit(.openFiles, soft: 256, hard: 512)])
        #expect(spec.cgroupLimits == CgroupLimits(memoryMaxBytes: 64 << 20, cpuMaxMicroCores: 500_000, cpuWeight: 50,
                                                  pidsMax: 32))
        #expect(spec.problems().isEmpty)
    }

    @Test func anImagesConfigGivesWhatTheManifestLeavesOut() throws {
        let image = ImageRootfs(
            rootfs: "/var/lib/flotilla/images/instances/web-1/rootfs", entrypoint: ["/bin/sh"], cmd: ["-c", "exec httpd"],
            environment: ["PATH=/opt/bin:/bin", "FOO=image", "BAR=image", "BROKEN"], workingDirectory: "/srv", user: "100:200")
        let bare = try ManifestDecoder.decode(Array(#"{"name": "a", "services": [{"name": "web", "image": "web:1", "env": {"FOO": "manifest"}}]}"#.utf8))
        let spec = LaunchSpec(service: bare.services[0], instance: InstanceFacts(instanceID: "web-1", image: image))
        #expect(spec.root == .directory(image.rootfs))
        #expect(spec.command == ["/bin/sh", "-c", "exec httpd"])
        #expect(spec.environment == ["PATH": "/opt/bin:/bin", "FOO": "manifest", "BAR": "image"])
        #expect(spec.workingDirectory == "/srv")
        #expect(spec.user == UserSpec(user: "100", group: "200"))

        // What the manifest writes wins: its command replaces entrypoint and cmd, and its user
        // comes with that user's own primary group, not the image's.
        let written = try ManifestDecoder.decode(Array(#"""
            {"name": "a", "services": [{"name": "web", "image": "web:1", "command": ["/bin/true"], "workingDir": "/", "user": "web"}]}
            """#.utf8))
        let overridden = LaunchSpec(service: written.services[0], instance: InstanceFacts(instanceID: "web-1", image: image))
        #expect(overridden.command == ["/bin/true"])
        #expect(overridden.workingDirectory == "/")
        #expect(overridden.user == UserSpec(user: "web", group: nil))
    }

    @Test func userNamespaceTakesTheManifestsMappings() throws {
        var service = Service(name: "s", command: ["/bin/true"])
        service.isolation.namespaces = [.pid, .mount, .user]
        let spec = LaunchSpec(service: service, instance: InstanceFacts(instanceID: "s-1"))
        #expect(spec.idMapping == .shifted(to: 100_000))
        #expect(spec.hostname == nil)
    }

    @Test(.enabled(if: isRoot, "needs root: namespaces and cgroups"), .dedicatedThread)
    func mappedServiceRunsAsTheManifestSays() async throws {
        let rootfs = try BusyboxRootfs()
        let test = try TestSupervisor()
        let script = "echo $PORT_HTTP $PORT_ADMIN $LOG; id; hostname; grep CapEff /proc/self/status; ulimit -n; "
            + "touch /x 2>/dev/null || echo ro; touch /scratch/y && echo tmpfs; grep ^0:: /proc/self/cgroup"
        let service = try Self.service(rootfs: rootfs.path, script: script)
        var spec = LaunchSpec(service: service, instance: InstanceFacts(instanceID: "web-\(getpid())-mapped",
                                                                         assignedPorts: ["http": 31000]))
        let capture = try OutputCapture()
        spec.standardOutput = .fileDescriptor(capture.writeEnd)
        spec.standardError = .fileDescriptor(capture.writeEnd)
        let (exit, output) = try await run(spec, on: test.supervisor, capture: capture)
        #expect(exit.termination == .exited(code: 0))
        #expect(output == """
            31000 9000 info
            uid=1000(web) gid=1000(web) groups=0(root),1000(web),2000(staff)
            web-\(getpid())-mapped
            CapEff:\t0000000000000400
            256
            ro
            tmpfs
            0::/

            """)
        try test.finish()
    }
}
