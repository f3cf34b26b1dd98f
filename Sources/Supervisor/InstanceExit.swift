import Glibc

/// How an instance ended (named apart from Swift Testing's ExitStatus): its main process's status, whether the OOM killer was involved, and
/// whether its cgroup could be removed.
public struct InstanceExit: Sendable, Hashable, CustomStringConvertible {
    /// What waitid reported for the main process.
    public enum Termination: Sendable, Hashable {
        /// exit(code).
        case exited(code: Int32)
        /// Killed by a signal.
        case signaled(signal: Int32, coreDumped: Bool)
        /// Someone else reaped the process first; its status is lost.
        case unknown
    }

    /// The main process's end.
    public var termination: Termination
    /// OOM kills in the instance's cgroup over its life.
    public var oomKillCount: UInt64
    /// Set when the cgroup could not be emptied or removed after the exit.
    public var cleanupError: SystemCallError?

    /// The main process was SIGKILLed while the OOM killer was at work in its cgroup: the kill
    /// was the OOM killer's.
    public var oomKilled: Bool {
        termination == .signaled(signal: SIGKILL, coreDumped: false) && oomKillCount > 0
    }

    /// `exited with status 0`, `killed by signal 9: out of memory`, …
    public var description: String {
        var text: String
        switch termination {
        case .exited(let code): text = "exited with status \(code)"
        case .signaled(let signal, let core):
            text = "killed by signal \(signal)" + (core ? " (core dumped)" : "")
        case .unknown: text = "exit status lost"
        }
        if oomKilled { text += ": out of memory" }
        if let cleanupError { text += "; cgroup cleanup failed: \(cleanupError)" }
        return text
    }
}
