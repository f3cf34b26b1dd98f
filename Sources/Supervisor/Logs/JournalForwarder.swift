import CSystemd
import Dispatch
import Glibc
import Synchronization

/// Sends service output to journald, line by line, through libsystemd's sd_journal_sendv (DESIGN.md
/// §8), with fields naming the service, the instance and the stream. libsystemd always talks to
/// the fixed socket `/run/systemd/journal/socket`; forwarding is on when that socket exists.
///
/// Lines are queued (up to `maxQueuedBytes`) and sent from a queue of their own, as Docker's
/// journald driver does in its non-blocking mode: sd_journal_sendv blocks once journald's
/// socket holds `net.unix.max_dgram_qlen` (512) datagrams, and sent from the log pump a stalled
/// journald (a slow disk, a restart) stopped the capture of every service's output, each
/// service then blocking on its full pipe, and an exit's last drain on the node's event loop.
/// Past the limit lines are dropped and counted; the next line sent is preceded by a notice
/// saying how many. The files under the state directory keep every line either way.
final class JournalForwarder: Sendable {
    /// How many bytes of entries may wait for journald.
    static let maxQueuedBytes = 8 << 20

    private let sender = DispatchQueue(label: "flotilla.journal-forwarder")
    private let queuedBytes = Atomic<Int>(0)
    private let dropped = Atomic<Int>(0)

    /// Where journald listens for its native protocol (fixed in libsystemd).
    static let socketPath = "/run/systemd/journal/socket"

    /// Whether a journald is there to forward to.
    static var isAvailable: Bool {
        var info = stat()
        return stat(socketPath, &info) == 0 && (info.st_mode & S_IFMT) == S_IFSOCK
    }

    /// Sends one line. PRIORITY 6 (info) for stdout and 3 (err) for stderr, as Docker's journald
    /// driver does; SYSLOG_IDENTIFIER is the service so that `journalctl -t web` finds it.
    func send(_ line: ArraySlice<UInt8>, stream: LogStream, service: String, instance: String) {
        let fields: [[UInt8]] = [
            Array("MESSAGE=".utf8) + line,
            Array((stream == .stderr ? "PRIORITY=3" : "PRIORITY=6").utf8),
            Array("SYSLOG_IDENTIFIER=\(service)".utf8),
            Array("FLOTILLA_SERVICE=\(service)".utf8),
            Array("FLOTILLA_INSTANCE=\(instance)".utf8),
            Array("FLOTILLA_STREAM=\(stream.rawValue)".utf8),
        ]
        let size = fields.reduce(0) { $0 + $1.count }
        guard queuedBytes.add(size, ordering: .relaxed).newValue <= Self.maxQueuedBytes else {
            queuedBytes.subtract(size, ordering: .relaxed)
            dropped.add(1, ordering: .relaxed)
            return
        }
        // Taken as this line is queued: the notice goes where the gap is, after the lines queued
        // before the drops. The count covers every service's lines, so the notice is the agent's.
        let lost = dropped.exchange(0, ordering: .relaxed)
        sender.async { [self] in
            if lost > 0 {
                Self.write([
                    Array("MESSAGE=\(lost) lines of service output were not forwarded to the journal: journald did not keep up".utf8),
                    Array("PRIORITY=4".utf8), Array("SYSLOG_IDENTIFIER=flotilla-agentd".utf8),
                ])
            }
            Self.write(fields)
            queuedBytes.subtract(size, ordering: .relaxed)
        }
    }

    /// Waits up to `timeout` for the queued lines to be sent (an agent stopping): whether they were.
    @discardableResult
    func flush(within timeout: Duration) -> Bool {
        let done = DispatchSemaphore(value: 0)
        sender.async { done.signal() }
        return done.wait(timeout: .now() + .nanoseconds(Int(timeout.nanosecondsClamped))) == .success
    }

    /// One entry, now (blocking while journald's socket is full).
    private static func write(_ fields: [[UInt8]]) {
        // One buffer holds every field; the iovecs point into it while sd_journal_sendv runs.
        var storage = fields.flatMap { $0 }
        storage.withUnsafeMutableBytes { buffer in
            guard let base = buffer.baseAddress else { return }
            var offset = 0
            var vectors: [iovec] = []
            for field in fields {
                vectors.append(iovec(iov_base: base + offset, iov_len: field.count))
                offset += field.count
            }
            _ = vectors.withUnsafeBufferPointer { sd_journal_sendv($0.baseAddress, Int32($0.count)) }
        }
    }
}

/// Cuts a stream's output into lines for the journal, carrying an unfinished line over to the next
/// chunk; a line longer than journald's LineMax (48 KiB) is sent in pieces, as journald does.
struct JournalLineSplitter: Sendable {
    static let maxLineBytes = 48 * 1024
    private var pending: [UInt8] = []

    mutating func feed(_ chunk: [UInt8], send: (ArraySlice<UInt8>) -> Void) {
        var start = 0
        for index in chunk.indices where chunk[index] == UInt8(ascii: "\n") {
            if pending.isEmpty {
                send(chunk[start..<index])
            } else {
                pending += chunk[start..<index]
                send(pending[...])
                pending = []
            }
            start = index + 1
        }
        pending += chunk[start...]
        while pending.count >= Self.maxLineBytes {
            send(pending.prefix(Self.maxLineBytes))
            pending.removeFirst(Self.maxLineBytes)
        }
    }

    /// The unfinished line, when the stream has ended.
    mutating func finish(send: (ArraySlice<UInt8>) -> Void) {
        if !pending.isEmpty { send(pending[...]) }
        pending = []
    }
}
