import Foundation
import Glibc

/// A systemd-journald of the benchmark's own, for the forwarding-on figures on a host where no
/// journald runs (no systemd as pid 1, as in CI and this VM). libsystemd always sends to the fixed
/// socket /run/systemd/journal/socket, so the benchmark runs again in a private mount namespace
/// with tmpfs over /run/systemd, /run/log and /var/log/journal, and journald is started there:
/// the host's directories are untouched and the journal lives in memory. The same set-up as
/// SupervisorTests' JournalTests.
enum PrivateJournald {
    /// Where Debian's systemd package puts journald.
    static let journaldPath = "/lib/systemd/systemd-journald"

    /// Whether the host's own journald listens where libsystemd sends.
    static var hostJournaldListens: Bool {
        var info = stat()
        return stat("/run/systemd/journal/socket", &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Why a private journald cannot be started here; nil when it can.
    static var unavailableReason: String? {
        if !FileManager.default.isExecutableFile(atPath: journaldPath) {
            return "\(journaldPath) is missing (Debian package systemd)"
        }
        if !FileManager.default.isExecutableFile(atPath: "/usr/bin/unshare") {
            return "/usr/bin/unshare is missing (Debian package util-linux)"
        }
        return nil
    }

    /// Runs this executable with `arguments` beside a private journald; prints how many lines of
    /// the `service` the journal holds afterwards (every forwarded line, unless journald
    /// dropped some). Returns the run's wait status.
    static func run(arguments: [String], countingLinesOf service: String) throws -> Int32 {
        let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        let script = """
            set -e
            mount -t tmpfs tmpfs /run/systemd
            mkdir -p /run/systemd/journal /run/log
            mount -t tmpfs tmpfs /run/log
            if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
            \(journaldPath) >/dev/null 2>&1 &
            journald=$!
            i=0; while [ ! -S /run/systemd/journal/socket ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
            [ -S /run/systemd/journal/socket ] || { echo "private journald did not start"; exit 1; }
            status=0
            "$0" "$@" || status=$?
            journalctl --sync 2>/dev/null || sleep 1
            echo "  the private journal holds $(journalctl --no-pager -o cat FLOTILLA_SERVICE=\(service) | wc -l) lines of service \(service)"
            kill $journald; wait $journald || true
            exit $status
            """
        fflush(nil)
        var pid: pid_t = 0
        let argv = ["unshare", "--mount", "--propagation", "private", "/bin/sh", "-c", script, executable] + arguments
        let cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for argument in cArguments { free(argument) } }
        let rc = posix_spawn(&pid, "/usr/bin/unshare", nil, nil, cArguments, environ)
        guard rc == 0 else { throw BenchFailure("posix_spawn \"/usr/bin/unshare\": \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return status
    }
}
