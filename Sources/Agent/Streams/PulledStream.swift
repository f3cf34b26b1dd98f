import Synchronization

/// One stream an agent serves to another over calls (``StreamCall``): what a producer writes
/// is buffered here until the other agent pulls it. A full buffer holds the producer back, so
/// a slow reader costs a fixed amount of memory, as a TCP window would.
actor PulledStream {
    enum Outcome: Sendable, Equatable {
        case finished
        case failed(String)
    }

    /// The most bytes held for the reader.
    static let bufferLimit = 1 << 20

    private var buffer: [UInt8] = []
    private var outcome: Outcome?
    private var dataWaiter: CheckedContinuation<Void, Never>?
    private var spaceWaiter: CheckedContinuation<Void, Never>?
    private var producer: Task<Void, Never>?

    /// Runs `produce`, which writes chunks through the function it is given, until it returns
    /// (the stream ends), throws (it fails) or the stream is cancelled.
    func start(_ produce: @escaping @Sendable (_ write: @escaping @Sendable ([UInt8]) async -> Void) async throws -> Void) {
        producer = Task {
            do {
                try await produce { chunk in await self.append(chunk) }
                self.end(.finished)
            } catch {
                self.end(.failed("\(error)"))
            }
        }
    }

    private func append(_ chunk: [UInt8]) async {
        while buffer.count >= Self.bufferLimit && outcome == nil {
            await withCheckedContinuation { spaceWaiter = $0 }
        }
        guard outcome == nil else { return }
        buffer += chunk
        wakeReader()
    }

    private func end(_ result: Outcome) {
        if outcome == nil { outcome = result }
        wakeReader()
    }

    private func wakeReader() {
        dataWaiter?.resume()
        dataWaiter = nil
    }

    /// What was written since the last pull, waiting up to `wait` for something; with the
    /// outcome once everything written has been pulled.
    func pull(within wait: Duration) async -> (data: [UInt8], outcome: Outcome?) {
        if buffer.isEmpty && outcome == nil {
            wakeReader()
            await withCheckedContinuation { continuation in
                dataWaiter = continuation
                Task {
                    try? await Task.sleep(for: wait)
                    self.wakeReader()
                }
            }
        }
        let data = buffer
        buffer = []
        spaceWaiter?.resume()
        spaceWaiter = nil
        return (data, outcome)
    }

    /// Stops the producer; what was not pulled is dropped.
    func cancel() {
        producer?.cancel()
        end(.finished)
        buffer = []
        spaceWaiter?.resume()
        spaceWaiter = nil
    }
}

/// The streams an agent serves now, by session id, each for the member that opened it. A
/// session nobody pulled for a minute (its reader gone without closing it) is cancelled.
final class StreamSessions: Sendable {
    private struct Session {
        var stream: PulledStream
        var owner: UInt64
        var lastPulled: ContinuousClock.Instant
    }

    private struct State {
        var next: UInt64 = 1
        var sessions: [UInt64: Session] = [:]
    }

    static let idleLimit = Duration.seconds(60)
    static let maximumSessions = 256
    private let state = Mutex(State())

    /// Starts `produce` as a new session of `owner`'s; its id.
    func open(
        owner: UInt64, _ produce: @escaping @Sendable (_ write: @escaping @Sendable ([UInt8]) async -> Void) async throws -> Void
    ) async throws -> UInt64 {
        let now = ContinuousClock.now
        let stream = PulledStream()
        let (id, idle) = try state.withLock { state throws -> (UInt64, [PulledStream]) in
            let idle = state.sessions.filter { now - $0.value.lastPulled > Self.idleLimit }
            for key in idle.keys { state.sessions[key] = nil }
            guard state.sessions.count < Self.maximumSessions else {
                throw StreamCallError("this agent serves \(Self.maximumSessions) streams already; close one or retry later")
            }
            let id = state.next
            state.next += 1
            state.sessions[id] = Session(stream: stream, owner: owner, lastPulled: now)
            return (id, idle.values.map(\.stream))
        }
        for stale in idle { await stale.cancel() }
        await stream.start(produce)
        return id
    }

    /// The next part of session `id`, for its owner; the session is gone once it has ended.
    func pull(_ id: UInt64, by caller: UInt64, within wait: Duration) async throws -> (data: [UInt8], outcome: PulledStream.Outcome?) {
        let stream = try state.withLock { state throws -> PulledStream in
            guard let session = state.sessions[id], session.owner == caller else {
                throw StreamCallError("no stream \(id) of this caller here (it ended, was idle over \(Self.idleLimit), or the agent restarted)")
            }
            state.sessions[id]?.lastPulled = .now
            return session.stream
        }
        let part = await stream.pull(within: wait)
        if part.outcome != nil { state.withLock { _ = $0.sessions.removeValue(forKey: id) } }
        return part
    }

    /// Ends session `id` of `caller` (its reader is gone).
    func close(_ id: UInt64, by caller: UInt64) async {
        let stream = state.withLock { state -> PulledStream? in
            guard state.sessions[id]?.owner == caller else { return nil }
            return state.sessions.removeValue(forKey: id)?.stream
        }
        await stream?.cancel()
    }

    var count: Int { state.withLock { $0.sessions.count } }
}

struct StreamCallError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
