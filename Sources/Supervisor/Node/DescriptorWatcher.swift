import CSpawn
import Glibc
import Synchronization

/// One thread that waits in epoll for descriptors to become readable and calls each one's
/// handler on that thread: log pipes (which the handler drains into files), notify sockets,
/// exec-check result pipes. A thousand idle instances cost one blocked thread and no CPU.
/// Handlers must not block for long: they delay every other descriptor of the watcher.
final class DescriptorWatcher: Sendable {
    /// What a handler learns about a wake-up.
    struct Readiness: Sendable {
        /// EPOLLHUP: a pipe's last writer closed it.
        var hangUp: Bool
        /// EPOLLERR.
        var error: Bool
        /// EPOLLOUT (for descriptors added with `writable`).
        var writable: Bool = false
    }

    /// Called on the watcher's thread each time the descriptor is ready (level-triggered: a
    /// handler that leaves data behind is called again).
    typealias Handler = @Sendable (Readiness) -> Void

    private let epollFD: Int32
    private let wakeFD: Int32
    /// A handler, and for a one-shot registration the descriptor to stop watching before it runs.
    private struct Entry {
        var handler: Handler
        var oneShotFD: Int32?
    }

    private let handlers = Mutex<[UInt64: Entry]>([:])
    /// Descriptors taken off epoll for a while (`pause`), by token: each goes back at its
    /// deadline unless it was removed meanwhile. Changed and resumed under this lock, which
    /// `remove` takes too, so that a descriptor removed (and then closed by its owner) is never
    /// added back.
    private let paused = Mutex<[UInt64: (fd: Int32, until: ContinuousClock.Instant)]>([:])
    /// The watcher thread's kernel id (gettid), once it runs: tests read its CPU time.
    let threadID = Atomic<Int32>(0)
    private let nextToken = Atomic<UInt64>(1)
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<pthread_t?>(nil)
    let name: String

    init(name: String) throws(SystemCallError) {
        self.name = name
        epollFD = fl_epoll_create()
        guard epollFD >= 0 else { throw .last("epoll_create1") }
        wakeFD = fl_eventfd()
        guard wakeFD >= 0 else {
            close(epollFD)
            throw .last("eventfd")
        }
        guard fl_epoll_add(epollFD, wakeFD, 0) == 0 else {
            let error = SystemCallError.last("epoll_ctl")
            close(wakeFD)
            close(epollFD)
            throw error
        }
        let box = Unmanaged.passRetained(self)
        var handle = pthread_t()
        let rc = pthread_create(&handle, nil, { argument in
            guard let argument else { return nil }
            let watcher = Unmanaged<DescriptorWatcher>.fromOpaque(argument).takeRetainedValue()
            watcher.run()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            close(wakeFD)
            close(epollFD)
            throw SystemCallError(call: "pthread_create", errno: rc)
        }
        thread.withLock { $0 = handle }
    }

    deinit {
        close(wakeFD)
        close(epollFD)
    }

    /// Stops and joins the thread. Registered descriptors stay open (their owners close them).
    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
        if let handle = thread.withLock({ state -> pthread_t? in defer { state = nil }; return state }) {
            pthread_join(handle, nil)
        }
        handlers.withLock { $0 = [:] }
    }

    /// Watches `fd` for readability; returns the token that `remove` takes.
    func add(_ fd: Int32, handler: @escaping Handler) throws(SystemCallError) -> UInt64 {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        handlers.withLock { $0[token] = Entry(handler: handler) }
        let rc = fl_epoll_add_mode(epollFD, fd, token, 0)
        guard rc == 0 else {
            _ = handlers.withLock { $0.removeValue(forKey: token) }
            throw SystemCallError(call: "epoll_ctl", path: name, errno: -rc)
        }
        return token
    }

    /// Watches `fd` for writability (a connect completing) or, with `writable: false`, for
    /// readability; `modify` switches between the two.
    func add(_ fd: Int32, writable: Bool, handler: @escaping Handler) throws(SystemCallError) -> UInt64 {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        handlers.withLock { $0[token] = Entry(handler: handler) }
        let rc = fl_epoll_set(epollFD, 1, fd, token, UInt32(writable ? FL_EPOLLOUT : FL_EPOLLIN))
        guard rc == 0 else {
            _ = handlers.withLock { $0.removeValue(forKey: token) }
            throw SystemCallError(call: "epoll_ctl", path: name, errno: -rc)
        }
        return token
    }

    /// Watches `fd` until it first becomes readable (a pidfd: its process exited); the watcher
    /// stops watching it, then calls `handler` once. Throws ESHUTDOWN once the watcher is
    /// stopping: the handler would never run.
    /// Throws ESHUTDOWN once the watcher is stopping: the handler would never run.
    func addOneShot(_ fd: Int32, handler: @escaping Handler) throws(SystemCallError) {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        handlers.withLock { $0[token] = Entry(handler: handler, oneShotFD: fd) }
        let rc = fl_epoll_add_mode(epollFD, fd, token, 0)
        guard rc == 0 else {
            _ = handlers.withLock { $0.removeValue(forKey: token) }
            throw SystemCallError(call: "epoll_ctl", path: name, errno: -rc)
        }
        // Checked after the registration: `stop` sets the flag before it drops every handler,
        // so a registration it may have missed is seen here.
        if stopping.load(ordering: .sequentiallyConsistent) {
            _ = handlers.withLock { $0.removeValue(forKey: token) }
            _ = fl_epoll_del(epollFD, fd)
            throw SystemCallError(call: "watch", path: name, errno: ESHUTDOWN)
        }
    }

    /// Switches a descriptor added with `add(_:writable:handler:)` to readability.
    func watchReadable(_ fd: Int32, token: UInt64) {
        _ = fl_epoll_set(epollFD, 3, fd, token, UInt32(FL_EPOLLIN))
    }

    /// Stops watching `fd` (before its owner closes it). A wake-up already taken for it may still
    /// call its handler once, on the watcher's thread; handlers check their own state.
    func remove(_ fd: Int32, token: UInt64) {
        paused.withLock { paused in
            paused.removeValue(forKey: token)
            _ = fl_epoll_del(epollFD, fd)
        }
        _ = handlers.withLock { $0.removeValue(forKey: token) }
    }

    /// Takes `fd`, added with `add(_:handler:)`, off epoll for `duration`, then watches it for
    /// readability again. For a handler that cannot consume what is ready (a log pipe while the
    /// disk is full): level-triggered epoll would otherwise call it again at once, for ever.
    func pause(_ fd: Int32, token: UInt64, for duration: Duration) {
        paused.withLock { paused in
            guard fl_epoll_del(epollFD, fd) == 0 || paused[token] != nil else { return }
            paused[token] = (fd, ContinuousClock.now + duration)
        }
        // The thread recomputes how long it may wait (a no-op when the caller is that thread).
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
    }

    /// Puts back the paused descriptors whose time has come; returns how long until the next
    /// one is due, in milliseconds (-1: none is paused). A descriptor epoll does not take back
    /// (ENOMEM, or ENOSPC at the user's `max_user_watches`) stays paused and is tried again
    /// after `resumeRetry`: dropped, it would never be watched again, and a log pipe nobody
    /// drains blocks its service at its next write once full.
    private func resumeDue() -> Int32 {
        paused.withLock { paused in
            let now = ContinuousClock.now
            for (token, entry) in paused where entry.until <= now {
                let rc = fl_epoll_add_mode(epollFD, entry.fd, token, 0)
                if rc == 0 || rc == -EEXIST {
                    paused.removeValue(forKey: token)
                } else {
                    paused[token]?.until = now + Self.resumeRetry
                }
            }
            guard let next = paused.values.map(\.until).min() else { return -1 }
            let (seconds, attoseconds) = (next - now).components
            return Int32(clamping: seconds * 1000 + attoseconds / 1_000_000_000_000_000 + 1)
        }
    }

    /// How long a descriptor epoll refused to take back stays paused before the next try.
    static let resumeRetry: Duration = .milliseconds(100)

    /// Drops the handler of a descriptor already closed (closing removed it from epoll).
    func forget(token: UInt64) {
        // Nor is it to be put back: its number may be another descriptor's by now.
        _ = paused.withLock { $0.removeValue(forKey: token) }
        _ = handlers.withLock { $0.removeValue(forKey: token) }
    }

    private func run() {
        threadID.store(fl_thread_id(), ordering: .relaxed)
        // Named for `top -H` and /proc (at most 15 bytes); the thread has no other name.
        _ = fl_thread_set_name(String(decoding: name.utf8.prefix(15), as: UTF8.self))
        var tokens = [UInt64](repeating: 0, count: 64)
        var events = [UInt32](repeating: 0, count: 64)
        while !stopping.load(ordering: .sequentiallyConsistent) {
            let timeout = resumeDue()
            let ready = tokens.withUnsafeMutableBufferPointer { tokenBuffer in
                events.withUnsafeMutableBufferPointer { eventBuffer in
                    fl_epoll_wait_events(epollFD, tokenBuffer.baseAddress, eventBuffer.baseAddress, 64, timeout)
                }
            }
            if ready == -EINTR { continue }
            if ready < 0 { return }
            for index in 0..<Int(ready) where tokens[index] == 0 {
                // The wake eventfd (stop, pause): emptied, or it would stay ready.
                var count: UInt64 = 0
                _ = read(wakeFD, &count, 8)
            }
            for index in 0..<Int(ready) where tokens[index] != 0 {
                let token = tokens[index]
                guard let entry = handlers.withLock({ handlers -> Entry? in
                    guard let entry = handlers[token] else { return nil }
                    if entry.oneShotFD != nil { handlers[token] = nil }
                    return entry
                }) else { continue }
                if let fd = entry.oneShotFD { _ = fl_epoll_del(epollFD, fd) }
                let bits = events[index]
                entry.handler(Readiness(hangUp: bits & UInt32(FL_EPOLLHUP) != 0, error: bits & UInt32(FL_EPOLLERR) != 0,
                                  writable: bits & UInt32(FL_EPOLLOUT) != 0))
            }
        }
    }
}
