import CSpawn
import Glibc
import Synchronization

/// What an exec check's command writes (its stdout and stderr): a pipe, drained on the
/// descriptor watcher's thread as it fills. The first `ExecProbe.outputBytes` are kept for the
/// outcome; the rest is read and dropped, as Docker quotes only the start of a check's output.
/// A memory file held all of it before: pages the command wrote are charged to the instance's
/// cgroup, and a check that printed more than the instance's memory limit left brought the OOM
/// killer into the instance. A command that writes faster than the watcher drains waits on the
/// full pipe, as it would on a terminal; the copying is the watcher thread's CPU, not the
/// instance's, for as long as the check runs (its timeout bounds it).
final class ExecCheckOutput: Sendable {
    /// The command's end; ours is closed once the command holds it (`closeWriteEnd`).
    let writeEnd: Int32
    private let readEnd: Int32

    private struct State {
        var kept: [UInt8] = []
        var writeEndOpen = true
        var readEndOpen = true
        /// The watcher's registration, while there is one.
        var token: UInt64?
        /// The read end saw end-of-file (every writer gone) or an error: nothing more will come.
        var ended = false
        /// `finish` has quoted the output; what still comes is drained and dropped.
        var finished = false
        /// What reads go through, made at the first wake-up and kept for the next ones.
        var buffer: [UInt8] = []
    }

    private let state = Mutex(State())
    /// What one wake-up reads at most before it lets the watcher's other descriptors go first.
    private static let readPerWakeUp = 1 << 20

    init() throws(SystemCallError) {
        var fds: [Int32] = [-1, -1]
        guard fl_pipe_read_nonblocking(&fds) == 0 else { throw .last("pipe2") }
        readEnd = fds[0]
        writeEnd = fds[1]
    }

    /// Closes the supervisor's copy of the command's end, once the command has it (or never will).
    func closeWriteEnd() {
        state.withLock { state in
            guard state.writeEndOpen else { return }
            state.writeEndOpen = false
            Glibc.close(writeEnd)
        }
    }

    /// Drains the pipe on `watcher`'s thread from now on, until end-of-file. Registration and
    /// removal happen under the lock that guards the descriptor, so that it is never removed
    /// from epoll after it was closed (by then its number may be another descriptor's).
    func watch(on watcher: DescriptorWatcher) throws(SystemCallError) {
        try state.withLock { (state) throws(SystemCallError) in
            state.token = try watcher.add(readEnd) { [self] _ in drained(watcher) }
            // An end-of-file the handler saw before the token was stored: level-triggered epoll
            // would report the hang-up for ever.
            if state.ended { Self.unwatch(&state, watcher, readEnd) }
        }
    }

    private func drained(_ watcher: DescriptorWatcher) {
        state.withLock { state in
            guard Self.read(readEnd, into: &state) else { return }
            Self.unwatch(&state, watcher, readEnd)
            if state.finished { Self.closeRead(&state, readEnd) }
        }
    }

    /// The start of the output as text, without its trailing newlines, once the command has
    /// ended: what is still in the pipe is read first (up to one wake-up's worth). A process
    /// the command left running with the pipe as its output keeps it open: it is drained, its
    /// output dropped, until that process closes it, rather than given SIGPIPE at its next
    /// write (fatal by default) by a pipe closed under it.
    func finish(_ watcher: DescriptorWatcher) -> String {
        let kept = state.withLock { state -> [UInt8] in
            _ = Self.read(readEnd, into: &state)
            state.finished = true
            Self.closeWrite(&state, writeEnd)
            if state.ended || state.token == nil {
                Self.unwatch(&state, watcher, readEnd)
                Self.closeRead(&state, readEnd)
            }
            return state.kept
        }
        var text = String(decoding: kept, as: UTF8.self)
        while text.last == "\n" { text.removeLast() }
        return text
    }

    /// Closes both ends, unread (the check never ran, or could not be watched).
    func close(_ watcher: DescriptorWatcher) {
        state.withLock { state in
            Self.unwatch(&state, watcher, readEnd)
            Self.closeRead(&state, readEnd)
            Self.closeWrite(&state, writeEnd)
        }
    }

    private static func unwatch(_ state: inout State, _ watcher: DescriptorWatcher, _ readEnd: Int32) {
        guard let token = state.token else { return }
        state.token = nil
        watcher.remove(readEnd, token: token)
    }

    private static func closeRead(_ state: inout State, _ readEnd: Int32) {
        guard state.readEndOpen else { return }
        state.readEndOpen = false
        state.buffer = []
        Glibc.close(readEnd)
    }

    private static func closeWrite(_ state: inout State, _ writeEnd: Int32) {
        guard state.writeEndOpen else { return }
        state.writeEndOpen = false
        Glibc.close(writeEnd)
    }

    /// Reads what the pipe holds, up to `readPerWakeUp`, keeping the start of it; true at
    /// end-of-file (or an error other than an empty pipe), when there is nothing more to wait for.
    private static func read(_ fd: Int32, into state: inout State) -> Bool {
        guard state.readEndOpen else { return false }
        if state.buffer.isEmpty { state.buffer = [UInt8](repeating: 0, count: 64 << 10) }
        var total = 0
        while total < readPerWakeUp {
            let n = state.buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                let room = state.finished ? 0 : ExecProbe.outputBytes - state.kept.count
                if room > 0 { state.kept += state.buffer[0..<min(n, room)] }
                total += n
                continue
            }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { return false }
            state.ended = true
            return true
        }
        return false
    }
}
