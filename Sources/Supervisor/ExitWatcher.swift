import CSpawn
import Glibc
import Synchronization

/// One thread that waits, in epoll, for any held pidfd to become readable (the process exited)
/// and finishes that instance. A thousand idle services cost one blocked thread and no CPU.
final class ExitWatcher: Sendable {
    private let epollFD: Int32
    /// An eventfd that wakes the thread to stop.
    private let wakeFD: Int32
    private let watched = Mutex<[UInt64: InstanceHandle]>([:])
    private let nextToken = Atomic<UInt64>(1)
    private let stopping = Atomic<Bool>(false)
    private let thread = Mutex<pthread_t?>(nil)

    init() throws(SystemCallError) {
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
    }

    deinit {
        close(wakeFD)
        close(epollFD)
    }

    /// Starts the thread.
    func start() throws(SystemCallError) {
        let box = Unmanaged.passRetained(self)
        var handle = pthread_t()
        let rc = pthread_create(&handle, nil, { argument in
            guard let argument else { return nil }
            let watcher = Unmanaged<ExitWatcher>.fromOpaque(argument).takeRetainedValue()
            watcher.run()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw SystemCallError(call: "pthread_create", errno: rc)
        }
        thread.withLock { $0 = handle }
    }

    /// Stops and joins the thread; instances still running stay as they are.
    func stop() {
        stopping.store(true, ordering: .sequentiallyConsistent)
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
        if let handle = thread.withLock({ state -> pthread_t? in defer { state = nil }; return state }) {
            pthread_join(handle, nil)
        }
    }

    /// Watches `instance` until its main process exits.
    func watch(_ instance: InstanceHandle) throws(SystemCallError) {
        let token = nextToken.wrappingAdd(1, ordering: .relaxed).oldValue
        watched.withLock { $0[token] = instance }
        guard fl_epoll_add(epollFD, instance.pidFD.descriptor, token) == 0 else {
            let error = SystemCallError.last("epoll_ctl")
            watched.withLock { _ = $0.removeValue(forKey: token) }
            throw error
        }
    }

    /// How many instances are watched.
    var count: Int {
        watched.withLock { $0.count }
    }

    private func run() {
        var tokens = [UInt64](repeating: 0, count: 64)
        while !stopping.load(ordering: .sequentiallyConsistent) {
            let ready = tokens.withUnsafeMutableBufferPointer { fl_epoll_wait(epollFD, $0.baseAddress, 64, -1) }
            if ready < 0 {
                if errno == EINTR { continue }
                return
            }
            for token in tokens[0..<Int(ready)] where token != 0 {
                guard let instance = watched.withLock({ $0.removeValue(forKey: token) }) else { continue }
                _ = fl_epoll_del(epollFD, instance.pidFD.descriptor)
                instance.processExited()
            }
        }
    }
}
