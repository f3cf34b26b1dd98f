import Foundation
import Glibc
import Manifest
import Testing
import TestSupport

@testable import Supervisor

/// The sd_notify protocol between services and their supervisor, with supervisor-testd (through
/// libsystemd's sd_notify) as the services' client.
@Suite(.dedicatedThread, .enabled(if: isRoot, "needs root: namespaces and cgroups"), .enabled(if: testDaemonBuilt, "build supervisor-testd first"),
       .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct NotifyTests {
    @Test func aNotifyServiceBecomesReadyOnlyAfterReady() async throws {
        try await withTestNode { test in
            let policy = SupervisionPolicy(readiness: .notify, stopTimeout: .milliseconds(300))
            let instance = try await test.node.supervise(hostShellService(
                "sleep 0.4; $TESTD notify STATUS=warming; sleep 0.4; $TESTD notify READY=1 STATUS=serving; exec sleep 1000",
                policy: policy))
            let ready = try await instance.wait(timeout: .seconds(30)) { $0.isReady }
            #expect(ready.statusText == "serving")
            let events = instance.events()
            let launchedAt = try #require(events.first { $0.kind == .launched }?.at)
            let warming = try #require(events.first { $0.kind == .status && $0.reason == "warming" })
            let readyEvent = try #require(events.first { $0.kind == .ready })
            // Not ready on launch, nor at the first message: only at READY=1, 0.8 s in.
            #expect(warming.at < readyEvent.at)
            #expect(readyEvent.at - launchedAt >= .milliseconds(800), "ready before READY=1 was sent")
        }
    }

    @Test func aMissedWatchdogRestartsTheInstance() async throws {
        try await withTestNode { test in
            let policy = SupervisionPolicy(restart: RestartPolicy(initialDelay: .milliseconds(50)), readiness: .notify,
                                           watchdog: .milliseconds(800), stopTimeout: .milliseconds(300))
            let instance = try await test.node.supervise(hostShellService(
                "echo usec=$WATCHDOG_USEC; $TESTD notify READY=1; for i in 1 2 3 4; do sleep 0.3; $TESTD notify WATCHDOG=1; done; exec sleep 1000",
                policy: policy))
            let restarted = try await instance.wait(timeout: .seconds(30)) { $0.launchCount >= 2 }
            #expect(restarted.lastExit == .watchdogMissed)
            let events = instance.events()
            let missed = try #require(events.first { $0.kind == .watchdogMissed })
            let launched = try #require(events.first { $0.kind == .launched })
            // Four pings 0.3 s apart kept it alive for over a second, then 0.8 s of silence.
            #expect(missed.at - launched.at >= .milliseconds(1800), "missed \(missed.at - launched.at) after launch")
            #expect(try capturedLines(instance).first == "usec=800000")
        }
    }

    @Test func aServiceCannotSpeakForAnother() async throws {
        try await withTestNode { test in
            let policy = SupervisionPolicy(readiness: .notify, stopTimeout: .milliseconds(300))
            let victim = try await test.node.supervise(hostShellService("exec sleep 1000", id: "victim", policy: policy))
            let victimSocket = victim.directory + "/notify/notify.sock"
            let spoofer = try await test.node.supervise(hostShellService(
                "NOTIFY_SOCKET=\(victimSocket) $TESTD notify READY=1 STATUS=spoofed; $TESTD notify READY=1; exec sleep 1000",
                id: "spoofer", policy: policy))
            _ = try await spoofer.wait(timeout: .seconds(30)) { $0.isReady }
            let refused = await eventually(within: .seconds(30)) { victim.events().contains { $0.kind == .notifyRefused } }
            #expect(refused)
            let status = await victim.status()
            #expect(!status.isReady)
            #expect(status.statusText == nil)
            let reason = victim.events().first { $0.kind == .notifyRefused }?.reason ?? ""
            #expect(reason.contains("not this instance's"), "\(reason)")
        }
    }

    /// A message over the socket's 4096 bytes arrives cut short, its last assignment perhaps cut
    /// too (WATCHDOG_USEC=30000000 read as =300): ignored whole, as systemd does. Before, its
    /// first 4096 bytes were acted on: here READY=1, before a status too long to fit.
    @Test func aMessageCutShortIsIgnored() async throws {
        try await withTestNode { test in
            let policy = SupervisionPolicy(readiness: .notify, stopTimeout: .milliseconds(300))
            let instance = try await test.node.supervise(hostShellService(
                "$TESTD notify READY=1 STATUS=$(printf '%05000d' 0); $TESTD notify STATUS=after; exec sleep 1000", policy: policy))
            #expect(await eventually(within: .seconds(30)) { await instance.status().statusText == "after" })
            let status = await instance.status()
            #expect(!status.isReady)
            let refused = instance.events().first { $0.kind == .notifyRefused }?.reason ?? ""
            #expect(refused.contains("cut short, ignored as systemd does"), "\(instance.events().map(\.description))")
        }
    }

    @Test func theSocketIsMountedIntoAnInstanceWithItsOwnRoot() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let instance = try await test.node.supervise(shellService(
                "echo $NOTIFY_SOCKET; ls -l /run/flotilla/notify/ | grep -c '^s.*notify.sock'; touch /run/flotilla/notify/x || echo read-only",
                rootfs: rootfs, policy: SupervisionPolicy(restart: RestartPolicy(policy: .never))))
            _ = try await instance.wait(timeout: .seconds(30)) { $0.isFinished }
            #expect(try capturedLines(instance).filter { !$0.hasPrefix("touch:") }
                == ["/run/flotilla/notify/notify.sock", "1", "read-only"])
        }
    }
}
