import CSpawn
import Foundation
import Glibc
import Testing
import TestSupport

@testable import Supervisor

/// agentd's sd_notify side (SystemdNotifier, through libsystemd), run in supervisor-testd's
/// `agent` mode against a notify socket of this test, as systemd would listen.
@Suite(.dedicatedThread, .enabled(if: testDaemonBuilt, "build supervisor-testd first"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct SystemdNotifierTests {
    /// Collects datagrams sent to a fresh socket.
    final class Listener: @unchecked Sendable {
        let path: String
        let fd: Int32

        init() throws {
            path = NSTemporaryDirectory() + "flotilla-sdnotify-" + UUID().uuidString.prefix(8) + ".sock"
            fd = fl_notify_bind(path)
            guard fd >= 0 else { throw SystemCallError(call: "bind", path: path, errno: -fd) }
        }

        deinit {
            close(fd)
            unlink(path)
        }

        func receive(for duration: Duration) -> [String] {
            var messages: [String] = []
            let deadline = ContinuousClock.now + duration
            var buffer = [CChar](repeating: 0, count: 4096)
            while ContinuousClock.now < deadline {
                var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&descriptor, 1, 20)
                var sender = fl_notify_sender()
                let n = buffer.withUnsafeMutableBufferPointer { fl_notify_receive(fd, $0.baseAddress, $0.count, &sender) }
                if sender.pidfd >= 0 { close(sender.pidfd) }
                if n > 0 { messages.append(String(decoding: buffer[0..<Int(n)].map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
            }
            return messages
        }
    }

    @Test func underSystemdTheAgentSendsReadyStatusAndWatchdogPings() throws {
        let listener = try Listener()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: testDaemonPath)
        process.arguments = ["agent", "supervising 3 instances"]
        process.environment = ["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "200000"]
        process.standardOutput = Pipe()
        try process.run()
        var messages: [String] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while !messages.contains(where: { $0.hasPrefix("READY=1") }) && ContinuousClock.now < deadline {
            messages += listener.receive(for: .milliseconds(100))
        }
        #expect(messages.first == "READY=1\nSTATUS=supervising 3 instances")
        let early = listener.receive(for: .seconds(1))
        process.terminate()
        let late = listener.receive(for: .seconds(2))
        terminate(process)
        // Pings at half of the 200 ms watchdog: about ten in a second (fewer on a loaded machine).
        let pings = early.filter { $0 == "WATCHDOG=1" }.count
        #expect(pings >= 3 && pings <= 15, "\(pings) pings")
        #expect(late.contains("STOPPING=1"))
        #expect(process.terminationStatus == 0)
    }

    @Test func withoutSystemdTheAgentRunsAsUsual() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: testDaemonPath)
        process.arguments = ["agent"]
        process.environment = [:]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // It runs (and has said so) although nothing listens.
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        #expect(line == "agent running\n")
        #expect(process.isRunning)
        terminate(process)
        #expect(process.terminationStatus == 0)
        let notify = Process()
        notify.executableURL = URL(fileURLWithPath: testDaemonPath)
        notify.arguments = ["notify", "READY=1"]
        notify.environment = [:]
        try notify.run()
        notify.waitUntilExit()
        #expect(notify.terminationStatus == 1, "nothing is sent without NOTIFY_SOCKET")
    }
}

/// SIGTERM until the daemon has exited, for at most 10 seconds (then SIGKILL, and the test fails).
/// A single SIGTERM can be lost: the daemon catches it through a dispatch signal source, which
/// starts listening a moment after it is created, and meanwhile the signal is ignored.
private func terminate(_ process: Process) {
    let deadline = ContinuousClock.now + .seconds(10)
    while process.isRunning && ContinuousClock.now < deadline {
        process.terminate()
        usleep(100_000)
    }
    if process.isRunning {
        Issue.record("the daemon did not stop within 10 seconds of SIGTERM")
        kill(process.processIdentifier, SIGKILL)
    }
    process.waitUntilExit()
}
