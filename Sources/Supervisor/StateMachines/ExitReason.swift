import Glibc

/// Why an instance's process ended, as the restart policy sees it. A kill the supervisor made
/// (failed health check, missed watchdog, readiness timeout) is named for its cause, not for the
/// signal that carried it out.
public enum ExitReason: Sendable, Hashable, Codable, CustomStringConvertible {
    /// exit(code).
    case exited(code: Int32)
    /// Killed by a signal nobody here sent for a reason of its own.
    case signaled(signal: Int32)
    /// Killed by the kernel's OOM killer in the instance's cgroup.
    case oomKilled
    /// Stopped because its health check failed `unhealthyThreshold` times in a row.
    case healthCheckFailed(detail: String)
    /// Stopped because no `WATCHDOG=1` came within the watchdog timeout.
    case watchdogMissed
    /// Stopped because a `readiness: notify` service sent no `READY=1` in time.
    case readinessTimeout
    /// The process could not be started at all.
    case launchFailed(message: String)
    /// It ended, but how is not known (it died while no supervisor was watching and was reaped
    /// by another process): the text says what is known.
    case unknown(detail: String)

    /// A clean exit: the only end `on-failure` does not restart and `never` counts as completed.
    public var isSuccess: Bool {
        self == .exited(code: 0)
    }

    /// The reason for a process end reported by `InstanceHandle`.
    public init(_ exit: InstanceExit) {
        if exit.oomKilled {
            self = .oomKilled
            return
        }
        switch exit.termination {
        case .exited(let code): self = .exited(code: code)
        case .signaled(let signal, _): self = .signaled(signal: signal)
        case .unknown:
            self = exit.oomKillCount > 0
                ? .oomKilled : .unknown(detail: "exit status lost: the process was reaped by another")
        }
    }

    /// A wait status as waitpid reports it (e.g. /proc/PID/stat's exit_code, PIDFD_INFO_EXIT).
    public init(waitStatus status: Int32) {
        let signal = status & 0x7f
        if signal == 0 {
            self = .exited(code: (status >> 8) & 0xff)
        } else {
            self = .signaled(signal: signal)
        }
    }

    public var description: String {
        switch self {
        case .exited(let code): return "exited with status \(code)"
        case .signaled(let signal): return "killed by signal \(signal) (\(Self.signalName(signal)))"
        case .oomKilled: return "killed by the OOM killer"
        case .healthCheckFailed(let detail): return "failed health check: \(detail)"
        case .watchdogMissed: return "missed watchdog"
        case .readinessTimeout: return "not ready in time (no READY=1)"
        case .launchFailed(let message): return "could not start: \(message)"
        case .unknown(let detail): return detail
        }
    }

    static func signalName(_ signal: Int32) -> String {
        let names: [Int32: String] = [
            1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL",
            10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 28: "SIGWINCH",
            30: "SIGPWR",
        ]
        return names[signal] ?? "signal \(signal)"
    }
}
