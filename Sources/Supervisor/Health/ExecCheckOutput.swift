import CSpawn
import Glibc
import Synchronization

/// What an exec check's command writes (its stdout and stderr): a pipe, drained on the
/// descriptor watcher's thread as it fills. The first `ExecProbe.outputBytes` are kept for the
/// outcome; the rest is read and dropped, as Docker quotes only the start of a check's output.
/// A memory file held all of it before: pages the command wrote are charged to the instance's
/// cgroup, and a check that printed more than the instance's memory limit left brought the OOM
/// killer into the instance. A command that writes faster than the watcher drains waits on the
/// full pipe, as it would on a terminal.
final class ExecCheckOutput: Sendable {
    /// The command's end; ours is closed once the command holds it (`closeWriteEnd`).
    let writeEnd: Int32
    private let readEnd: Int32

    private struct State {
        var kept: [UInt8] = []
        var writeEndOpen = true
        var readEndOpen = true
        /// Set once watched; nil after `finish` or `close`.
        var token: UInt64?
        /// The read end saw end-of-file (every writer gone) before it was watched: level-triggered
        /// epoll would report the hang-up for ever, so `watch` removes it at once.
        var ended = false
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

    /// Drains the pipe on `watcher`'s thread from now on.
    func watch(on watcher: DescriptorWatcher) throws(SystemCallError) {
        let token = try watcher.add(readEnd) { [self] _ in
            if state.withLock({ Self.read(readEnd, into: &$0) }) { stopWatching(watcher) }
        }
        let endedAlready = state.withLock { state -> Bool in
            state.token = token
            return state.ended
        }
        if endedAlready { stopWatching(watcher) }
    }

    /// What is still in the pipe is read (up to one wake-up's worth: a process the command left
    /// behind may write on), the pipe closed, and the start of the output returned as text,
    /// without its trailing newlines.
    func finish(_ watcher: DescriptorWatcher) -> String {
        stopWatching(watcher)
        let kept = state.withLock { state -> [UInt8] in
            _ = Self.read(readEnd, into: &state)
            Self.closeAll(&state, readEnd: readEnd, writeEnd: writeEnd)
            return state.kept
        }
        var text = String(decoding: kept, as: UTF8.self)
        while text.last == "\n" { text.removeLast() }
        return text
    }

    /// Closes both ends, unread (the check never ran, or could not be watched).
    func close(_ watcher: DescriptorWatcher) {
        stopWatching(watcher)
        state.withLock { Self.closeAll(&$0, readEnd: readEnd, writeEnd: writeEnd) }
    }

    private func stopWatching(_ watcher: DescriptorWatcher) {
        guard let token = state.withLock({ state -> UInt64? in defer { state.token = nil }; return state.token }) else { return }
        watcher.remove(readEnd, token: token)
    }

    private static func closeAll(_ state: inout State, readEnd: Int32, writeEnd: Int32) {
        if state.readEndOpen {
            state.readEndOpen = false
            Glibc.close(readEnd)
        }
        if state.writeEndOpen {
            state.writeEndOpen = false
            Glibc.close(writeEnd)
        }
    }

    /// Reads what the pipe holds, up to `readPerWakeUp`, keeping the start of it; true at
    /// end-of-file (or an error other than an empty pipe), when there is nothing more to wait for.
    private static func read(_ fd: Int32, into state: inout State) -> Bool {
        guard state.readEndOpen else { return false }
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        var total = 0
        while total < readPerWakeUp {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                let room = ExecProbe.outputBytes - state.kept.count
                if room > 0 { state.kept += buffer[0..<min(n, room)] }
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
