import Foundation
import Glibc
import Testing
import TestSupport

@testable import Supervisor

/// Journald forwarding against a real systemd-journald. No systemd runs here (it is not PID 1),
/// so the test starts journald itself in a private mount namespace with tmpfs over
/// /run/systemd, /run/log and /var/log/journal: libsystemd's fixed socket path then leads to it,
/// and the host's directories are untouched. supervisor-testd runs in the same namespace.
/// Where Debian's systemd package puts journald.
let journaldPath = "/lib/systemd/systemd-journald"

/// Outside CI a machine without journald skips the suite; in CI (`CI=true`, where scripts/setup
/// installs Debian's systemd package) a missing journald fails it, so the journald path cannot
/// go untested unnoticed.
let journaldRunnable = FileManager.default.isExecutableFile(atPath: journaldPath)
    || ProcessInfo.processInfo.environment["CI"] == "true"

@Suite(.dedicatedThread, .enabled(if: isRoot, "needs root: mount namespaces"), .enabled(if: testDaemonBuilt, "build supervisor-testd first"),
       .enabled(if: journaldRunnable, "needs systemd-journald (Debian: systemd; scripts/setup installs it)"),
       .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct JournalTests {
    @Test func outputLinesReachJournaldWithServiceInstanceAndStreamFields() async throws {
        let run = try Self.superviseWithAPrivateJournald(lines: 25, stalled: false)
        defer { run.remove() }
        #expect(run.status == 0)
        let entries = try String(contentsOfFile: run.output, encoding: .utf8).split(separator: "\n").compactMap {
            try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        let stdout = entries.filter { $0["FLOTILLA_STREAM"] as? String == "stdout" }
        let stderr = entries.filter { $0["FLOTILLA_STREAM"] as? String == "stderr" }
        #expect(stdout.map { $0["MESSAGE"] as? String } == (1...25).map { "out \($0)" })
        #expect(stderr.map { $0["MESSAGE"] as? String } == (1...25).map { "err \($0)" })
        #expect(stdout.allSatisfy { $0["PRIORITY"] as? String == "6" })
        #expect(stderr.allSatisfy { $0["PRIORITY"] as? String == "3" })
        #expect(entries.allSatisfy {
            $0["FLOTILLA_SERVICE"] as? String == "journal-test" && $0["SYSLOG_IDENTIFIER"] as? String == "journal-test"
                && $0["_TRANSPORT"] as? String == "journal"
        })
    }

    /// A journald that stops reading (SIGSTOP here; a slow disk or a restart elsewhere) holds up
    /// no capture: its socket takes 512 datagrams, then sd_journal_sendv blocks, and sent from
    /// the log pump that stopped every service's capture, and the exit's last drain on the
    /// node's event loop, whose timers then stopped too: supervisor-testd never saw its instance
    /// end and is killed after 60 s. Now lines queue, up to a limit past which they are dropped
    /// and counted.
    @Test func aStalledJournaldHoldsUpNoCapture() async throws {
        let started = ContinuousClock.now
        let run = try Self.superviseWithAPrivateJournald(lines: 5000, stalled: true)
        defer { run.remove() }
        let took = ContinuousClock.now - started
        #expect(run.status == 0, "supervisor-testd did not see its instance end")
        #expect(took < .seconds(40), "took \(took)")
    }

    /// One run of `supervisor-testd journal` (a host service printing `lines` lines on stdout and
    /// on stderr) in a private mount namespace with a journald of its own, stopped (SIGSTOP)
    /// before the service starts when `stalled`; the journal's entries for the instance go to
    /// `output` as JSON lines.
    static func superviseWithAPrivateJournald(lines: Int, stalled: Bool) throws -> JournalRun {
        try #require(FileManager.default.isExecutableFile(atPath: journaldPath), "no \(journaldPath): run scripts/setup")
        let tag = UUID().uuidString.prefix(8).lowercased()
        let run = JournalRun(tag: tag)
        let script = """
            set -e
            mount -t tmpfs tmpfs /run/systemd
            mkdir -p /run/systemd/journal /run/log
            mount -t tmpfs tmpfs /run/log
            if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
            \(journaldPath) >/dev/null 2>&1 &
            journald=$!
            i=0; while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
            \(stalled ? "kill -STOP $journald" : "")
            status=0
            timeout -s KILL 60 \(testDaemonPath) journal --state \(run.state) --parent \(run.parent) --id \(run.id) --lines \(lines) || status=$?
            \(stalled ? "kill -CONT $journald" : "")
            journalctl --sync 2>/dev/null || sleep 1
            journalctl -D /run/log/journal -o json --no-pager FLOTILLA_INSTANCE=\(run.id) > \(run.output)
            kill $journald; wait $journald || true
            exit $status
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["--mount", "--propagation", "private", "/bin/sh", "-c", script]
        try process.run()
        process.waitUntilExit()
        run.status = process.terminationStatus
        return run
    }
}

/// The files and cgroups of one `superviseWithAPrivateJournald` run.
final class JournalRun {
    let id: String
    let state: String
    let parent: String
    let output: String
    var status: Int32 = -1

    init(tag: String) {
        id = "journal-" + tag
        state = NSTemporaryDirectory() + "flotilla-journal-" + tag
        parent = "flotilla-test-" + tag
        output = state + ".json"
    }

    func remove() {
        FileSystem.removeTree(state)
        unlink(output)
        for mount in ["unified", "cpu", "memory", "pids", "freezer", "cpuacct"] { rmdir("/sys/fs/cgroup/\(mount)/\(parent)") }
    }
}
