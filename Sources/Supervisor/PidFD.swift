import CSpawn
import Glibc

/// A process held by a pidfd (CLONE_PIDFD): signals reach exactly that process, never another
/// that was given its pid after it died, and waitid reaps exactly it.
final class PidFD: Sendable {
    /// The descriptor; open for the object's whole life, so it is never a recycled number.
    let descriptor: Int32

    init(descriptor: Int32) {
        self.descriptor = descriptor
    }

    deinit {
        close(descriptor)
    }

    /// pidfd_send_signal. ESRCH once the process has exited.
    func send(_ signal: Int32) throws(SystemCallError) {
        guard fl_pidfd_send_signal(descriptor, signal) == 0 else { throw .last("pidfd_send_signal") }
    }

    /// Waits up to `timeout` for the process to exit (a pidfd polls readable then), and reaps it
    /// if it is our child.
    func reap(within timeout: Duration) {
        var descriptor = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
        let (seconds, attoseconds) = timeout.components
        _ = poll(&descriptor, 1, Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000))
        _ = try? reap()
    }

    /// Reaps the process (waitid P_PIDFD): nil while it runs, unless `blocking`, which waits for
    /// the exit. ECHILD when the process is not our child.
    func reap(blocking: Bool = false) throws(SystemCallError) -> InstanceExit.Termination? {
        var info = siginfo_t()
        while fl_waitid_pidfd(descriptor, &info, WEXITED | (blocking ? 0 : WNOHANG)) != 0 {
            guard errno == EINTR else { throw .last("waitid") }
        }
        var code: Int32 = 0, status: Int32 = 0, pid: Int32 = 0
        fl_siginfo_exit(&info, &code, &status, &pid)
        if pid == 0 { return nil }
        switch code {
        case Int32(CLD_EXITED): return .exited(code: status)
        case Int32(CLD_DUMPED): return .signaled(signal: status, coreDumped: true)
        default: return .signaled(signal: status, coreDumped: false)
        }
    }
}
