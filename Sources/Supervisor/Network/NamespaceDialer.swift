import CSpawn
import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// Opens TCP connections to 127.0.0.1 inside instances' network namespaces, for the port
/// publisher and for HTTP and TCP health checks.
///
/// setns(2) with CLONE_NEWNET moves only the calling thread, and a socket belongs for good to
/// the namespace it was created in (socket(7)); so one thread of our own enters the instance's
/// namespace, creates the socket, and returns to the node's namespace (a descriptor of it is
/// opened at start). No event-loop or cooperative thread ever changes namespace. The connect
/// itself, and everything after it, may then happen on any thread. This is how Docker's
/// libnetwork runs code in a sandbox (`ns.WithNetNSPath`), minus the per-call thread lock-in.
final class NamespaceDialer: Sendable {
    private let pool: NIOThreadPool
    /// The node's own network namespace, to come back to.
    private let homeNamespace: Int32

    /// Opens the node's namespace (the calling thread's) and starts the dialing thread.
    init() throws(SystemCallError) {
        let fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open", "/proc/thread-self/ns/net") }
        homeNamespace = fd
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
    }

    deinit {
        close(homeNamespace)
    }

    /// Stops the dialing thread.
    func shutdown() async {
        try? await pool.shutdownGracefully()
    }

    /// A non-blocking socket of `namespace`, connected or connecting to 127.0.0.1:`port`.
    /// `resetOnClose`: SO_LINGER 0 (health checks). Fails with the call that failed.
    func connect(into namespace: NetworkNamespace, port: Int, resetOnClose: Bool, on loop: EventLoop)
        -> EventLoopFuture<Int32>
    {
        let home = homeNamespace
        return pool.runIfActive(eventLoop: loop) { () throws -> Int32 in
            // `namespace` is captured: its descriptor stays open while the thread uses it.
            let fd = fl_loopback_connect_in(namespace.descriptor, home, Int32(clamping: port), resetOnClose ? 1 : 0)
            guard fd >= 0 else {
                if fd == -ENOTRECOVERABLE {
                    throw SystemCallError(call: "setns", path: "the node's network namespace", errno: ENOTRECOVERABLE)
                }
                throw SystemCallError(call: "connect", path: "127.0.0.1:\(port)", errno: -fd)
            }
            return fd
        }
    }

    /// A socket of `namespace` listening on 127.0.0.1:`port`, made on the calling thread, which
    /// enters the namespace for a moment: call it only from a thread of our own (a launch
    /// thread), never from an event loop or the cooperative pool.
    func listen(in namespace: NetworkNamespace, port: Int, backlog: Int32) throws(SystemCallError) -> Int32 {
        var failedCall: UnsafePointer<CChar>?
        let fd = fl_loopback_listen_in(namespace.descriptor, homeNamespace, Int32(clamping: port), backlog, &failedCall)
        guard fd >= 0 else {
            if fd == -ENOTRECOVERABLE {
                // A thread stuck in the instance's namespace must not make sockets for the node.
                fatalError("setns back to the node's network namespace failed; this thread is no longer in it")
            }
            throw SystemCallError(call: failedCall.map { String(cString: $0) } ?? "bind", path: "127.0.0.1:\(port)", errno: -fd)
        }
        return fd
    }

    /// Like `connect`, but the future completes only once the connection is established (or
    /// fails with the connect's error, or with ETIMEDOUT after `timeout`): what NIO's
    /// `withConnectedSocket` needs. On loopback the handshake has almost always completed when
    /// connect returns; otherwise `watcher` waits for the socket to become writable.
    func connected(into namespace: NetworkNamespace, port: Int, on loop: EventLoop, watcher: DescriptorWatcher,
                   timeout: Duration) -> EventLoopFuture<Int32>
    {
        connect(into: namespace, port: port, resetOnClose: false, on: loop).flatMap { fd in
            var probe = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&probe, 1, 0) == 1 {
                let error = fl_socket_error(fd)
                guard error == 0 else {
                    close(fd)
                    return loop.makeFailedFuture(SystemCallError(call: "connect", path: "127.0.0.1:\(port)", errno: error))
                }
                return loop.makeSucceededFuture(fd)
            }
            return PendingConnect.wait(fd: fd, port: port, on: loop, watcher: watcher, timeout: timeout)
        }
    }
}

/// A connect in progress, waited for on the watcher's thread; whichever of the wake-up and the
/// timeout comes first completes it, under the lock, so the descriptor is closed at most once.
private final class PendingConnect: Sendable {
    private struct State {
        var token: UInt64?
        var done = false
    }

    let fd: Int32
    let port: Int
    let watcher: DescriptorWatcher
    let promise: EventLoopPromise<Int32>
    private let state = Mutex(State())

    private init(fd: Int32, port: Int, watcher: DescriptorWatcher, promise: EventLoopPromise<Int32>) {
        self.fd = fd
        self.port = port
        self.watcher = watcher
        self.promise = promise
    }

    static func wait(fd: Int32, port: Int, on loop: EventLoop, watcher: DescriptorWatcher, timeout: Duration)
        -> EventLoopFuture<Int32>
    {
        let pending = PendingConnect(fd: fd, port: port, watcher: watcher, promise: loop.makePromise(of: Int32.self))
        do {
            let token = try watcher.add(fd, writable: true) { _ in pending.finish(error: fl_socket_error(fd)) }
            let finishedEarly = pending.state.withLock { state -> Bool in
                state.token = token
                return state.done
            }
            if finishedEarly { watcher.remove(fd, token: token) }
        } catch {
            pending.finish(error: error.errno)
            return pending.promise.futureResult
        }
        let timer = loop.scheduleTask(in: .nanoseconds(timeout.nanosecondsClamped)) { pending.finish(error: ETIMEDOUT) }
        pending.promise.futureResult.whenComplete { _ in timer.cancel() }
        return pending.promise.futureResult
    }

    /// Completes once: hands the descriptor on (error 0) or closes it.
    private func finish(error: Int32) {
        let completed = state.withLock { state -> Bool in
            guard !state.done else { return false }
            state.done = true
            if let token = state.token { watcher.remove(fd, token: token) }
            if error != 0 { close(fd) }
            return true
        }
        guard completed else { return }
        if error == 0 {
            promise.succeed(fd)
        } else {
            promise.fail(SystemCallError(call: "connect", path: "127.0.0.1:\(port)", errno: error))
        }
    }
}
