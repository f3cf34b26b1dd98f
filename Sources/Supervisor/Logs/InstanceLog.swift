import BlockingWork
import CSpawn
import Glibc
import Synchronization

/// The output of one instance: its two named pipes (FIFOs) in the instance's state directory, the
/// rotated files they drain into, and optionally the journal.
///
/// Why FIFOs opened read-write: the service's stdout and stderr are FIFOs it opens (through its
/// file descriptors 1 and 2) for reading and writing both (Linux allows O_RDWR on a FIFO). A pipe
/// with a reader never fails a write with EPIPE, so when the supervisor is killed the service
/// keeps running, its output queues in the pipe (enlarged to `pipeBytes`), and at worst it blocks
/// until the next supervisor opens the FIFO by its path and drains it. Nothing depends on a
/// descriptor held only by the dead process. What leaves the pipe goes into the files with
/// splice (`LogFileSet`), so a kill of the supervisor loses and duplicates nothing.
/// Limit: output still queued when the service itself exits while no supervisor runs is freed
/// with the pipe.
public final class InstanceLog: Sendable {
    /// The instance's state directory (the FIFOs and `log/` are in it).
    public let directory: String
    /// Service and instance names, for the journal.
    public let serviceName: String
    public let instanceID: String
    let pipeBytes: Int
    private let pump: DescriptorWatcher
    private let journal: JournalForwarder?
    private let state: Mutex<State>

    private struct Reader {
        var fd: Int32
        var token: UInt64
    }

    private struct State {
        var files: LogFileSet
        var readers: [LogStream: Reader] = [:]
        var splitters: [LogStream: JournalLineSplitter] = [:]
        var subscribers: [UInt64: AsyncStream<Void>.Continuation] = [:]
        var nextSubscriber: UInt64 = 1
        var bytesCaptured: Int64 = 0
    }

    /// The log directory.
    public var logDirectory: String { directory + "/log" }

    /// A reader of this instance's files.
    public var reader: LogReader { LogReader(directory: logDirectory) }

    init(directory: String, serviceName: String, instanceID: String, maxFileBytes: Int, maxFiles: Int,
         pump: DescriptorWatcher, journal: JournalForwarder?, pipeBytes: Int = 1 << 20) throws(SystemCallError)
    {
        self.directory = directory
        self.serviceName = serviceName
        self.instanceID = instanceID
        self.pump = pump
        self.journal = journal
        self.pipeBytes = pipeBytes
        let files = try LogFileSet(directory: directory + "/log", maxFileBytes: maxFileBytes, maxFiles: maxFiles)
        state = Mutex(State(files: files))
    }

    deinit {
        state.withLock { state in
            for (_, reader) in state.readers {
                pump.remove(reader.fd, token: reader.token)
                close(reader.fd)
            }
            state.files.close()
            for (_, subscriber) in state.subscribers { subscriber.finish() }
        }
    }

    func fifoPath(_ stream: LogStream) -> String {
        directory + "/" + stream.rawValue + ".fifo"
    }

    /// Bytes of output moved into the files since this object was made.
    public var bytesCaptured: Int64 {
        state.withLock { $0.bytesCaptured }
    }

    /// For a launch: the service's stdout and stderr, each a FIFO opened read-write (see the type's
    /// comment), and this supervisor's readers of both, watched by the log pump. The caller
    /// closes the two returned descriptors once the service holds them (after the launch).
    func openForLaunch() throws(SystemCallError) -> (stdout: Int32, stderr: Int32) {
        var opened: [Int32] = []
        do throws(SystemCallError) {
            for stream in LogStream.allCases {
                let path = fifoPath(stream)
                if mkfifo(path, 0o600) != 0 && errno != EEXIST { throw SystemCallError.last("mkfifo", path) }
                let fd = open(path, O_RDWR | O_CLOEXEC)
                guard fd >= 0 else { throw SystemCallError.last("open", path) }
                opened.append(fd)
                // Best effort: an unprivileged supervisor may be refused more than the default.
                _ = fl_pipe_resize(fd, Int32(clamping: pipeBytes))
            }
            try attachReaders()
        } catch {
            for fd in opened { close(fd) }
            throw error
        }
        return (opened[0], opened[1])
    }

    /// Opens this supervisor's readers of the FIFOs (at a launch, or when adopting a running
    /// instance: what it wrote meanwhile is still queued) and hands them to the log pump.
    func attachReaders() throws(SystemCallError) {
        try state.withLock { (state) throws(SystemCallError) in
            for stream in LogStream.allCases where state.readers[stream] == nil {
                let path = fifoPath(stream)
                // Non-blocking: opening a FIFO for reading does not wait for a writer then.
                let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
                guard fd >= 0 else {
                    if errno == ENOENT { continue }
                    throw SystemCallError.last("open", path)
                }
                let token = try pump.add(fd) { [weak self] readiness in
                    self?.pumpWokeUp(stream, hangUp: readiness.hangUp)
                }
                state.readers[stream] = Reader(fd: fd, token: token)
            }
        }
    }

    /// The pump found `stream` ready: move up to a few MiB (then let other instances have a
    /// turn; the pump comes back while data remains), or close it at end of file.
    private func pumpWokeUp(_ stream: LogStream, hangUp: Bool) {
        state.withLock { state in
            guard let reader = state.readers[stream] else { return }
            var failed = false
            let moved = drain(&state, stream, reader: reader, budget: 4 << 20, failed: &failed)
            // The files refused the output (a full or failing disk): it stays in the pipe, which
            // stays readable, and the level-triggered pump would call back at once for ever.
            // Try again in a second.
            if failed { pump.pause(reader.fd, token: reader.token, for: Self.retryAfterWriteError) }
            // The hang-up may be stale: a relaunch may have opened the FIFO for writing since.
            if moved == 0 && hangUp && Self.isHungUp(reader.fd) && fl_pipe_queued(reader.fd) <= 0 {
                closeReader(&state, stream)
            }
            if moved > 0 { wakeSubscribers(state) }
        }
    }

    /// After the instance has ended (its cgroup is empty, so no writer is left): everything still
    /// queued goes into the files, then the readers are closed.
    func finish() {
        state.withLock { state in
            var moved = 0
            for stream in LogStream.allCases {
                guard let reader = state.readers[stream] else { continue }
                var failed = false  // the readers close next: nothing to retry
                moved += drain(&state, stream, reader: reader, budget: .max, failed: &failed)
                closeReader(&state, stream)
            }
            if moved > 0 { wakeSubscribers(state) }
        }
    }

    /// Closes the readers without draining (the supervisor is going away; the next one drains).
    func detach() {
        state.withLock { state in
            for stream in LogStream.allCases where state.readers[stream] != nil {
                if let reader = state.readers.removeValue(forKey: stream) {
                    pump.remove(reader.fd, token: reader.token)
                    close(reader.fd)
                }
            }
        }
    }

    /// Whether the pipe has no writer now.
    private static func isHungUp(_ fd: Int32) -> Bool {
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 1 && descriptor.revents & Int16(POLLHUP) != 0
    }

    private func closeReader(_ state: inout State, _ stream: LogStream) {
        guard let reader = state.readers.removeValue(forKey: stream) else { return }
        pump.remove(reader.fd, token: reader.token)
        close(reader.fd)
        if let journal, var splitter = state.splitters.removeValue(forKey: stream) {
            splitter.finish { journal.send($0, stream: stream, service: serviceName, instance: instanceID) }
        }
    }

    /// How long the pump leaves a pipe alone after the files refused its output.
    static var retryAfterWriteError: Duration { .seconds(1) }

    /// Moves what is queued, up to `budget` bytes; returns the bytes moved. `failed` is set when
    /// it stopped because the files refused the output.
    private func drain(_ state: inout State, _ stream: LogStream, reader: Reader, budget: Int, failed: inout Bool) -> Int {
        var moved = 0
        while moved < budget {
            let queued = Int(fl_pipe_queued(reader.fd))
            guard queued > 0 else { break }
            let timestamp = BootInstant.read(CLOCK_REALTIME)
            let result: (moved: Int, sequence: UInt64, offset: Int64)
            do {
                result = try state.files.append(from: reader.fd, stream: stream, queued: min(queued, budget - moved),
                                                timestampNanoseconds: timestamp)
            } catch {
                // A full or failing disk: the output stays queued in the pipe (the service
                // blocks when it is full) rather than being dropped.
                failed = true
                break
            }
            if result.moved == 0 { break }
            moved += result.moved
            if let journal {
                let bytes = state.files.readBack(offset: result.offset, length: result.moved)
                var splitter = state.splitters[stream] ?? JournalLineSplitter()
                splitter.feed(bytes) { journal.send($0, stream: stream, service: serviceName, instance: instanceID) }
                state.splitters[stream] = splitter
            }
        }
        state.bytesCaptured += Int64(moved)
        return moved
    }

    private func wakeSubscribers(_ state: State) {
        for (_, subscriber) in state.subscribers { subscriber.yield() }
    }

    /// Lines as they are captured: first the last `tail` lines kept, then each new complete
    /// line, until the caller stops iterating.
    public func follow(tail: Int = 0) -> AsyncThrowingStream<LogLine, any Error> {
        let (wakeups, wakeupContinuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state in
            defer { state.nextSubscriber += 1 }
            state.subscribers[state.nextSubscriber] = wakeupContinuation
            return state.nextSubscriber
        }
        let reader = self.reader
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    // The reads run on a Dispatch thread: the first may take whole files (up
                    // to 10 MiB each), and a chatty service wakes its followers often.
                    var (lines, cursor) = try await BlockingWork.run { try reader.lastLines(tail, unfinished: false) }
                    for line in lines { continuation.yield(line) }
                    for await _ in wakeups {
                        let after = cursor
                        (lines, cursor) = try await BlockingWork.run { try reader.read(after: after) }
                        for line in lines { continuation.yield(line) }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { [weak self] _ in
                task.cancel()
                wakeupContinuation.finish()
                _ = self?.state.withLock { $0.subscribers.removeValue(forKey: id) }
            }
        }
    }
}
