import Foundation
import Glibc
import NetnsHarness
import Testing
import TestSupport

/// The multi-host harness on the real kernel: hosts reach each other by address through the
/// bridge and only through it; cut, heal, delay and loss do what they say; processes end with
/// their children; and nothing is left behind, by `shutdown` or, for a run that died, by the
/// next network's sweep.
@Suite(.dedicatedThread, .enabled(if: getuid() == 0, "needs root: network namespaces"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct HostNetworkTests {
    @Test func hostReachesAServerOnAnotherByItsAddressAndNothingShowsInTheRootNamespace() async throws {
        let rootBefore = try rootNamespaceView()
        try await HostNetwork.with(hostCount: 2) { network in
            #expect(try network.address(of: 1) == "\(network.subnetPrefix).1")
            #expect(try network.address(of: 2) == "\(network.subnetPrefix).2")
            try startEchoServer(on: 2, in: network)
            let reply = try echo(from: 1, to: 2, in: network)
            #expect(reply.connected, "host 1 to host 2: \(reply.text)")
            // The server listens on every address of host 2, yet host 1's loopback is its own.
            #expect(try !echo(from: 1, toAddress: "127.0.0.1", in: network).connected)
            // Impairing adds links too: they also stay out of the root namespace.
            try network.impair(host: 2, delay: .milliseconds(1))
            let rootDuring = try rootNamespaceView()
            #expect(rootDuring == rootBefore)
            #expect(!rootDuring.contains("flt\(network.runID)"))
            #expect(Set(try namespaceList()).isSuperset(of: network.namespaces))
        }
    }

    @Test func aCutHostIsUnreachableUntilHealedAndOnlyItIsCut() async throws {
        try await HostNetwork.with(hostCount: 3) { network in
            try startEchoServer(on: 2, in: network)
            try startEchoServer(on: 3, in: network)
            #expect(try echo(from: 1, to: 2, in: network).connected)

            try network.cut(host: 2)
            let started = ContinuousClock.now
            let cut = try echo(from: 1, to: 2, in: network, timeoutSeconds: 1)
            #expect(!cut.connected, "host 2 is cut, yet: \(cut.text)")
            #expect(ContinuousClock.now - started < .seconds(5))
            #expect(try echo(from: 1, to: 3, in: network).connected, "cutting host 2 cut host 3 too")

            try network.heal(host: 2)
            #expect(try echoEventually(from: 1, to: 2, in: network), "host 2 still unreachable after heal")
        }
    }

    @Test func impairmentDelaysAndDropsUntilCleared() async throws {
        try await HostNetwork.with(hostCount: 2) { network in
            try startEchoServer(on: 2, in: network)
            let before = try echo(from: 1, to: 2, in: network)
            #expect(before.connected && before.roundTripMilliseconds < 50, "\(before.text)")

            try network.impair(host: 2, delay: .milliseconds(100))
            let delayed = try echo(from: 1, to: 2, in: network)
            // 100 ms each way: no round trip can be quicker than 200 ms.
            #expect(delayed.connected && delayed.roundTripMilliseconds >= 200, "\(delayed.text)")
            // Segments far above the MTU (TSO) cross the relay whole and intact.
            let bulk = try echo(from: 1, to: 2, in: network, bulkBytes: 2_000_000)
            #expect(bulk.connected, "\(bulk.text)")

            try network.clearImpairment(host: 2)
            let after = try echo(from: 1, to: 2, in: network)
            #expect(after.connected && after.roundTripMilliseconds < 50, "\(after.text)")

            try network.impair(host: 2, loss: 1)
            #expect(try !echo(from: 1, to: 2, in: network, timeoutSeconds: 1).connected, "every frame should be lost")
            try network.clearImpairment(host: 2)
            #expect(try echoEventually(from: 1, to: 2, in: network))
        }
    }

    @Test func kill9EndsTheProcessAndItsChildrenAndRestartRunsItAgainInItsHost() async throws {
        let log = temporaryPath("kill9.log")
        defer { unlink(log) }
        try await HostNetwork.with(hostCount: 1) { network in
            let namespace = try network.namespace(of: 1)
            let pid = try network.start(
                host: 1, arguments: ["sh", "-c", "sleep 300 & sleep 300 & echo started; wait"], logPath: log)
            try waitFor("started", count: 1, inFile: log)
            #expect(try network.pid(of: 1) == pid)
            #expect(try run(["ip", "netns", "identify", "\(pid)"]).trimmingCharacters(in: .whitespacesAndNewlines) == namespace)
            #expect(try pids(in: namespace).count == 3, "sh and its two sleeps")
            #expect(throws: HostNetworkError.alreadyRunning(host: 1, pid: pid)) {
                try network.start(host: 1, arguments: ["true"])
            }

            try network.kill9(host: 1)
            #expect(try network.pid(of: 1) == nil)
            #expect(try eventually { try pids(in: namespace).isEmpty }, "processes left in \(namespace)")

            let again = try network.restart(host: 1)
            try waitFor("started", count: 2, inFile: log)
            #expect(again != pid)
            #expect(try run(["ip", "netns", "identify", "\(again)"]).trimmingCharacters(in: .whitespacesAndNewlines) == namespace)
        }
    }

    @Test func shutdownLeavesNoNamespaceProcessMountOrRecord() async throws {
        let network = try HostNetwork(hostCount: 2)
        try startEchoServer(on: 2, in: network)
        try network.start(host: 1, arguments: ["sh", "-c", "sleep 300 & sleep 300 & wait"])
        try network.impair(host: 2, delay: .milliseconds(5))  // a relay process in the bridge's namespace
        let started = try network.namespaces.flatMap { try pids(in: $0) }
        #expect(started.count >= 5, "echo server, sh, two sleeps, relay: \(started)")
        #expect(FileManager.default.fileExists(atPath: "/run/flotilla-netns/\(network.runID)/owner"))

        try network.shutdown()
        let prefix = "flt\(network.runID)-"
        #expect(try namespaceList().filter { $0.hasPrefix(prefix) } == [])
        // Gone, or a zombie its parent (this test process, for the ones it started) has not
        // reaped yet: under load Foundation's reaper can lag behind.
        #expect(try eventually(timeout: .seconds(10)) { started.allSatisfy(hasEnded) }, "still alive: \(started)")
        #expect(!FileManager.default.fileExists(atPath: "/run/flotilla-netns/\(network.runID)"))
        #expect(!(try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)).contains(prefix))
        try network.shutdown()  // again: nothing to do
        #expect(throws: HostNetworkError.shutDown(runID: network.runID)) { try network.cut(host: 1) }
    }

    @Test func theNextNetworkSweepsARunWhoseOwnerDied() async throws {
        // A run as a killed test leaves it: a record whose owner is dead, a namespace it names,
        // one it had not yet recorded (same prefix), and a process still running in the first.
        let runID = "z" + String(UUID().uuidString.lowercased().filter(\.isHexDigit).prefix(4))
        let directory = "/run/flotilla-netns/\(runID)"
        let recorded = "flt\(runID)-h1", unrecorded = "flt\(runID)-br"
        let dead = Process()
        dead.executableURL = URL(fileURLWithPath: "/bin/true")
        try dead.run()
        dead.waitUntilExit()
        try run(["ip", "netns", "add", recorded])
        try run(["ip", "netns", "add", unrecorded])
        let orphan = Process()
        orphan.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
        orphan.arguments = ["netns", "exec", recorded, "sleep", "300"]
        try orphan.run()
        defer {  // should the sweep fail, leave nothing either
            kill(orphan.processIdentifier, SIGKILL)
            _ = try? run(["ip", "netns", "delete", recorded])
            _ = try? run(["ip", "netns", "delete", unrecorded])
            try? FileManager.default.removeItem(atPath: directory)
        }
        #expect(try eventually { try pids(in: recorded) == [orphan.processIdentifier] })
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try "\(recorded)\n".write(toFile: "\(directory)/namespaces", atomically: true, encoding: .utf8)
        try "\(dead.processIdentifier) 1\n".write(toFile: "\(directory)/owner", atomically: true, encoding: .utf8)

        // A live run is not touched by the sweep.
        let live = try HostNetwork(hostCount: 1)
        defer { try? live.shutdown() }
        try HostNetwork(hostCount: 1).shutdown()

        let names = try namespaceList()
        #expect(!names.contains(recorded) && !names.contains(unrecorded), "\(names)")
        #expect(try eventually { !orphan.isRunning }, "the orphan still runs")
        #expect(!FileManager.default.fileExists(atPath: directory))
        #expect(Set(names).isSuperset(of: live.namespaces), "the sweep removed a live run")
        #expect(FileManager.default.fileExists(atPath: "/run/flotilla-netns/\(live.runID)/owner"))
    }

    @Test func badInputIsRefusedNamingTheValue() async throws {
        for count in [0, HostNetwork.maximumHostCount + 1] {
            #expect(throws: HostNetworkError.hostCountOutOfRange(requested: count, allowed: 1...HostNetwork.maximumHostCount)) {
                _ = try HostNetwork(hostCount: count)
            }
        }
        #expect("\(HostNetworkError.hostCountOutOfRange(requested: 251, allowed: 1...250))".contains("251"))
        try await HostNetwork.with(hostCount: 2) { network in
            for host in [0, 3, -1] {
                #expect(throws: HostNetworkError.hostOutOfRange(host: host, hosts: 1...2)) { try network.address(of: host) }
                #expect(throws: HostNetworkError.hostOutOfRange(host: host, hosts: 1...2)) { try network.cut(host: host) }
                #expect(throws: HostNetworkError.hostOutOfRange(host: host, hosts: 1...2)) {
                    try network.start(host: host, arguments: ["true"])
                }
            }
            #expect("\(HostNetworkError.hostOutOfRange(host: 3, hosts: 1...2))".contains("host 3"))
            #expect(throws: HostNetworkError.nothingStarted(host: 1)) { try network.restart(host: 1) }
            #expect(throws: HostNetworkError.self) { try network.impair(host: 1, loss: 1.5) }
            #expect(throws: HostNetworkError.self) { try network.impair(host: 1, delay: .milliseconds(-1)) }
            let failed = #expect(throws: HostNetworkError.self) { try network.run(host: 1, arguments: ["sleep", "5"], timeout: .milliseconds(200)) }
            #expect("\(failed.map { "\($0)" } ?? "")".contains("sleep 5"))
        }
    }
}
