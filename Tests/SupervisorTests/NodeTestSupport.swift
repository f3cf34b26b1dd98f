import Foundation
import Glibc
import Manifest
import TestSupport
import Testing

@testable import Supervisor

/// A node supervisor with its own state directory and parent cgroup; `withTestNode` always
/// tears it down: every instance stopped, no cgroup left, the directory removed.
final class TestNode: Sendable {
    let node: NodeSupervisor
    let stateDirectory: String
    let parent: String

    /// `directory`, the state directory; nil: a new one under the temporary directory.
    init(journal: NodeSupervisor.JournalMode = .disabled, seed: UInt64 = 1, publishAddress: String = "0.0.0.0",
         forwardingNice: Int32 = NodeSupervisor.Configuration.defaultForwardingNice, directory: String? = nil) throws {
        let tag = UUID().uuidString.prefix(8).lowercased()
        stateDirectory = directory ?? NSTemporaryDirectory() + "flotilla-node-" + tag
        parent = "flotilla-test-" + tag
        node = try NodeSupervisor(NodeSupervisor.Configuration(stateDirectory: stateDirectory, cgroupParent: parent,
                                                               journal: journal, seed: seed,
                                                               publishAddress: publishAddress, forwardingNice: forwardingNice))
    }

    /// The next supervisor of `previous`'s node (same state directory and parent cgroup), as an
    /// agent restarted after `previous.node.detach()`; its teardown cleans up for both.
    init(adopting previous: TestNode, publishAddress: String = "0.0.0.0") throws {
        stateDirectory = previous.stateDirectory
        parent = previous.parent
        node = try NodeSupervisor(NodeSupervisor.Configuration(stateDirectory: stateDirectory, cgroupParent: parent,
                                                               journal: .disabled, seed: 2, publishAddress: publishAddress))
    }

    /// Every instance cgroup left under the parent.
    func leftoverCgroups() -> [String] {
        node.supervisor.cgroups.parentDirectories.flatMap { directory in
            FileSystem.entries(of: directory).filter { name in
                var info = stat()
                return stat(directory + "/" + name, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
            }.map { directory + "/" + $0 }
        }
    }

    func teardown() async {
        await node.shutdown()
        let leftovers = leftoverCgroups()
        #expect(leftovers == [], "cgroups left behind")
        for directory in leftovers {
            if FileIO.exists(directory + "/cgroup.kill") {
                try? FileIO.write("1", to: directory + "/cgroup.kill")
            } else {
                for pid in (try? InstanceCgroup.processes(in: directory)) ?? [] { kill(pid, SIGKILL) }
            }
            let deadline = ContinuousClock.now + .seconds(5)
            while rmdir(directory) != 0 && errno == EBUSY && ContinuousClock.now < deadline { usleep(1000) }
        }
        try? node.supervisor.cgroups.removeParent()
        FileSystem.removeTree(stateDirectory)
    }
}

/// Runs `body` with a fresh node and tears it down whatever happens.
func withTestNode(journal: NodeSupervisor.JournalMode = .disabled, publishAddress: String = "0.0.0.0",
                  forwardingNice: Int32 = NodeSupervisor.Configuration.defaultForwardingNice,
                  _ body: (TestNode) async throws -> Void) async throws
{
    let test = try TestNode(journal: journal, publishAddress: publishAddress, forwardingNice: forwardingNice)
    do {
        try await body(test)
    } catch {
        await test.teardown()
        throw error
    }
    await test.teardown()
}

/// A service running `script` with busybox's sh in `rootfs`.
func shellService(_ script: String, rootfs: BusyboxRootfs, id: String = #function,
                  policy: SupervisionPolicy = SupervisionPolicy(stopTimeout: .seconds(1)),
                  ports: [String: Int] = [:]) -> SupervisedService
{
    let sanitized = String(id.map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(30))
    let launch = LaunchSpec(instanceID: sanitized + "-" + UUID().uuidString.prefix(6).lowercased(),
                            command: ["/bin/sh", "-c", script], root: .directory(rootfs.path))
    return SupervisedService(serviceName: "test", launch: launch, policy: policy, ports: ports)
}

/// The lines an instance wrote, as captured.
func capturedLines(_ instance: SupervisedInstance) throws -> [String] {
    try instance.log.reader.lines().map(\.text)
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Polls `condition` every 20 ms until it holds; false if `timeout` passes first.
func eventually(within timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async rethrows -> Bool {
    try await pollCondition(timeout: timeout, every: .milliseconds(20), condition)
}

/// The supervisor-testd executable, built beside the tests (`swift build --build-tests` builds it).
let testDaemonPath: String = {
    let bundle = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().path
    return bundle + "/supervisor-testd"
}()

/// Whether supervisor-testd has been built.
let testDaemonBuilt = FileManager.default.isExecutableFile(atPath: testDaemonPath)

/// A service running `script` with the host's /bin/sh on the host's filesystem (in its own
/// namespaces still), where supervisor-testd can serve as its sd_notify client as `$TESTD`.
func hostShellService(_ script: String, id: String = #function, policy: SupervisionPolicy) -> SupervisedService {
    let sanitized = String(id.map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(30))
    let launch = LaunchSpec(instanceID: sanitized + "-" + UUID().uuidString.prefix(6).lowercased(),
                            command: ["/bin/sh", "-c", script], environment: ["TESTD": testDaemonPath], root: .host)
    return SupervisedService(serviceName: "test", launch: launch, policy: policy)
}
