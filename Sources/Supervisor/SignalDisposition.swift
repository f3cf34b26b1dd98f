import Glibc

/// Which signals a process catches and blocks, from /proc/PID/status (`SigCgt`, `SigBlk`: hex
/// masks, bit n-1 for signal n; proc(5)).
///
/// Why: the init of a pid namespace (a service's main process in its own pid namespace) never
/// acts on a signal it has no handler for: the kernel drops it, whoever sends it, except SIGKILL
/// and SIGSTOP from an ancestor namespace (kernel/signal.c, `sig_task_ignored` with
/// SIGNAL_UNKILLABLE). Waiting the stop timeout for such a signal to work only delays the kill.
struct SignalDisposition: Sendable, Hashable {
    var caught: UInt64
    var blocked: UInt64

    /// Reads /proc/`pid`/status; nil when the process is gone or the file has no masks.
    static func read(_ pid: pid_t) -> SignalDisposition? {
        guard let text = try? FileIO.readText("/proc/\(pid)/status") else { return nil }
        return parse(text)
    }

    static func parse(_ text: String) -> SignalDisposition? {
        var caught: UInt64?
        var blocked: UInt64?
        for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: ":"), maxSplits: 1)
            guard fields.count == 2 else { continue }
            let name = String(decoding: fields[0], as: UTF8.self)
            guard name == "SigCgt" || name == "SigBlk" else { continue }
            let digits = fields[1].filter { $0 != UInt8(ascii: " ") && $0 != UInt8(ascii: "\t") }
            let value = UInt64(String(decoding: digits, as: UTF8.self), radix: 16)
            if name == "SigCgt" { caught = value } else { blocked = value }
        }
        guard let caught, let blocked else { return nil }
        return SignalDisposition(caught: caught, blocked: blocked)
    }

    /// Whether a pid namespace's init with this disposition drops `signal` sent from outside:
    /// it has no handler and does not block it (a blocked signal stays pending, and a handler
    /// may be installed before it is unblocked).
    func initDiscards(_ signal: Int32) -> Bool {
        guard signal > 0, signal <= 64, signal != SIGKILL, signal != SIGSTOP else { return false }
        let bit = UInt64(1) << UInt64(signal - 1)
        return caught & bit == 0 && blocked & bit == 0
    }
}
