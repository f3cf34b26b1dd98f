import CSpawn
import Glibc
import Manifest
import NIOCore
import Synchronization

/// What one run of a probe found.
public struct ProbeOutcome: Sendable, Hashable {
    /// Whether the check passed.
    public var passed: Bool
    /// What it saw: the HTTP status, the connect error, the command's exit and output.
    public var detail: String
}

/// HTTP and TCP probes to 127.0.0.1:<port> (from the agent's side, or inside the instance's
/// network namespace when it has one of its own), as plain non-blocking
/// sockets on the control watcher's epoll thread; their timeouts run on the event loop. A
/// thousand instances' checks cost one thread, each check a connection.
///
/// Why not NIO channels: measured here (release build), a NIO `ClientBootstrap` connection with
/// the HTTP/1 client handlers cost about 0.27 ms of user CPU per check, which at 1,000 instances
/// checked every 10 s is over 6 % of a core; a plain socket costs a handful of system calls. The
/// only HTTP these checks need is one request out and the status line back.
enum NetworkProbe {
    /// An HTTP/1.1 GET of `path`; passes when the response's status is in `accepted` and its
    /// status line arrives within `timeout`.
    /// `inside`: the instance's own network namespace (`private` network mode), where 127.0.0.1 is
    /// its loopback rather than the node's; the socket is made there by the dialer's thread.
    static func http(on loop: EventLoop, watcher: DescriptorWatcher, port: Int, path: String, accepted: StatusRange,
                     timeout: Duration, inside: (NetworkNamespace, NamespaceDialer)? = nil) -> EventLoopFuture<ProbeOutcome>
    {
        let request = "GET \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: flotilla-health-check\r\nConnection: close\r\n\r\n"
        return SocketProbe.start(on: loop, watcher: watcher, port: port, kind: .http(request: Array(request.utf8), accepted: accepted),
                                 timeout: timeout, inside: inside)
    }

    /// A TCP connect; passes when the connection is accepted within `timeout`.
    static func tcp(on loop: EventLoop, watcher: DescriptorWatcher, port: Int, timeout: Duration,
                    inside: (NetworkNamespace, NamespaceDialer)? = nil) -> EventLoopFuture<ProbeOutcome>
    {
        SocketProbe.start(on: loop, watcher: watcher, port: port, kind: .tcp, timeout: timeout, inside: inside)
    }

    /// The status code of an HTTP/1.x status line (`HTTP/1.1 200 OK`), if `bytes` start with one.
    static func statusCode(_ bytes: [UInt8]) -> Int? {
        guard var end = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
        // `HTTP/1.1 200\r\n`: the reason phrase may be left out (RFC 9112 §4).
        if end > bytes.startIndex, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        let fields = bytes[..<end].split(separator: UInt8(ascii: " "), maxSplits: 2)
        guard fields.count >= 2, fields[0].starts(with: Array("HTTP/1.".utf8)), fields[1].count == 3 else { return nil }
        return Int(String(decoding: fields[1], as: UTF8.self))
    }
}

/// One probe's connection. Every use of its descriptor happens under its lock, so a timeout on
/// the event loop and a wake-up on the watcher's thread never race on a closed (and reused)
/// descriptor number.
private final class SocketProbe: Sendable {
    enum Kind: Sendable {
        case tcp
        case http(request: [UInt8], accepted: StatusRange)
    }

    private struct State {
        var token: UInt64?
        var done = false
        var connected = false
        var received: [UInt8] = []
    }

    let fd: Int32
    let port: Int
    let kind: Kind
    let watcher: DescriptorWatcher
    let promise: EventLoopPromise<ProbeOutcome>
    private let state = Mutex(State())

    private init(fd: Int32, port: Int, kind: Kind, watcher: DescriptorWatcher, promise: EventLoopPromise<ProbeOutcome>) {
        self.fd = fd
        self.port = port
        self.kind = kind
        self.watcher = watcher
        self.promise = promise
    }

    static func start(on loop: EventLoop, watcher: DescriptorWatcher, port: Int, kind: Kind, timeout: Duration,
                      inside: (NetworkNamespace, NamespaceDialer)?) -> EventLoopFuture<ProbeOutcome>
    {
        guard let (namespace, dialer) = inside else {
            return begin(fd: fl_loopback_connect(Int32(clamping: port)), on: loop, watcher: watcher, port: port, kind: kind,
                         timeout: timeout)
        }
        return dialer.connect(into: namespace, port: port, resetOnClose: true, on: loop)
            .flatMap { fd in begin(fd: fd, on: loop, watcher: watcher, port: port, kind: kind, timeout: timeout) }
            .recover { error in
                let reason = (error as? SystemCallError).map { String(cString: strerror($0.errno)) } ?? "\(error)"
                return ProbeOutcome(passed: false, detail: "connect to 127.0.0.1:\(port): \(reason)")
            }
    }

    /// The probe on `fd`, connected or connecting (a negative value is the connect's -errno).
    private static func begin(fd: Int32, on loop: EventLoop, watcher: DescriptorWatcher, port: Int, kind: Kind,
                              timeout: Duration) -> EventLoopFuture<ProbeOutcome>
    {
        let promise = loop.makePromise(of: ProbeOutcome.self)
        guard fd >= 0 else {
            promise.succeed(ProbeOutcome(passed: false, detail: "connect to 127.0.0.1:\(port): \(String(cString: strerror(-fd)))"))
            return promise.futureResult
        }
        let probe = SocketProbe(fd: fd, port: port, kind: kind, watcher: watcher, promise: promise)
        // On loopback the handshake has usually completed by the time connect returns: then
        // the request goes out at once and only the answer is waited for.
        let waitForConnect = !probe.sendEarly()
        do {
            let token = try watcher.add(fd, writable: waitForConnect) { readiness in probe.ready(readiness) }
            let finishedEarly = probe.state.withLock { state -> Bool in
                state.token = token
                return state.done
            }
            // Finished before the token was stored: the socket is closed already, and with it
            // its epoll registration; only the handler is left.
            if finishedEarly { watcher.forget(token: token) }
        } catch {
            probe.finish(ProbeOutcome(passed: false, detail: "\(error)"))
            return promise.futureResult
        }
        let timer = loop.scheduleTask(in: .nanoseconds(timeout.nanosecondsClamped)) {
            probe.finish(ProbeOutcome(passed: false, detail: "no answer from 127.0.0.1:\(port) within \(DurationText.formatRounded(timeout))"))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        return promise.futureResult
    }

    /// Sends the request right after connect if the connection is already established; true
    /// when it did (or the probe is a TCP one and has nothing to send, which still waits).
    private func sendEarly() -> Bool {
        guard case .http(let request, _) = kind, fl_socket_error(fd) == 0 else { return false }
        return state.withLock { state -> Bool in
            let written = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            guard written == request.count else { return false }
            state.connected = true
            return true
        }
    }

    /// On the watcher's thread.
    private func ready(_ readiness: DescriptorWatcher.Readiness) {
        let outcome = state.withLock { state -> ProbeOutcome? in
            guard !state.done else { return nil }
            if !state.connected {
                let error = fl_socket_error(fd)
                if error != 0 {
                    return ProbeOutcome(passed: false, detail: "connect to 127.0.0.1:\(port): \(String(cString: strerror(error)))")
                }
                state.connected = true
                switch kind {
                case .tcp:
                    return ProbeOutcome(passed: true, detail: "connected to 127.0.0.1:\(port)")
                case .http(let request, _):
                    // A request this small goes out in one write on a fresh connection.
                    let written = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
                    guard written == request.count else {
                        return ProbeOutcome(passed: false, detail: "HTTP: could not send the request: \(String(cString: strerror(errno)))")
                    }
                    if let token = state.token { watcher.watchReadable(fd, token: token) }
                    return nil
                }
            }
            guard case .http(_, let accepted) = kind else { return nil }
            var buffer = [UInt8](repeating: 0, count: 1024)
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EAGAIN || errno == EINTR { return nil }
                return ProbeOutcome(passed: false, detail: "HTTP: \(String(cString: strerror(errno)))")
            }
            state.received += buffer[0..<n]
            if let code = NetworkProbe.statusCode(state.received) {
                return ProbeOutcome(passed: accepted.contains(code), detail: "HTTP \(code)")
            }
            if n == 0 || state.received.count > 8192 {
                return ProbeOutcome(passed: false, detail: "HTTP: no status line in the response")
            }
            return nil
        }
        if let outcome { finish(outcome) }
    }

    /// Completes the probe once: stops watching, closes the socket, reports.
    func finish(_ outcome: ProbeOutcome) {
        let completed = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            if let token = state.token { watcher.remove(fd, token: token) }
            close(fd)
            return true
        }
        if completed { promise.succeed(outcome) }
    }
}
