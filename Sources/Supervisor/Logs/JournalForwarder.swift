import CSystemd
import Glibc

/// Sends service output to journald, line by line, through libsystemd's sd_journal_sendv (DESIGN.md
/// §8), with fields naming the service, the instance and the stream. libsystemd always talks to
/// the fixed socket `/run/systemd/journal/socket`; forwarding is on when that socket exists.
final class JournalForwarder: Sendable {
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
