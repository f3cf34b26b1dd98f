import AgentAPI
import Synchronization

/// Tells the agent's API and loops what the replicated state machine just applied: the index
/// of the latest change (for blocking queries, Consul-style `?index=N&wait=30s`) and the events
/// it produced (for the event stream). Written from inside the Raft node as entries apply.
public final class ChangeFeed: Sendable {
    private struct Waiter {
        var afterIndex: UInt64
        var continuation: CheckedContinuation<UInt64, Never>
        /// Ends the wait at its timeout; cancelled when something else ends it first, or
        /// every blocking query woken early would leave a task asleep until its deadline.
        var timer: Task<Void, Never>
    }

    private struct Storage {
        var index: UInt64 = 0
        var recentEvents: [ClusterEvent] = []
        var nextWaiterID = 0
        var waiters: [Int: Waiter] = [:]
        var subscribers: [Int: AsyncStream<ClusterEvent>.Continuation] = [:]
        /// Set by ``finish()``: waits (not paces) return at once from then on.
        var finished = false
        /// Timeout tasks not yet ended, cancelled or not.
        var timers = 0
    }

    /// Events kept for late subscribers (`deployctl events` shows recent history first).
    public static let retainedEvents = 1000

    private let storage = Mutex(Storage())

    public init() {}

    /// The index of the last change applied.
    public var index: UInt64 {
        storage.withLock { $0.index }
    }

    /// Records a change at `index` with its events, and wakes whoever waits for it.
    public func publish(index: UInt64, events: [ClusterEvent]) {
        let (woken, subscribers) = storage.withLock { storage -> ([Waiter], [AsyncStream<ClusterEvent>.Continuation]) in
            storage.index = max(storage.index, index)
            storage.recentEvents.append(contentsOf: events)
            if storage.recentEvents.count > Self.retainedEvents {
                storage.recentEvents.removeFirst(storage.recentEvents.count - Self.retainedEvents)
            }
            var woken: [Waiter] = []
            for (id, waiter) in storage.waiters where waiter.afterIndex < storage.index {
                woken.append(waiter)
                storage.waiters[id] = nil
            }
            return (woken, Array(storage.subscribers.values))
        }
        for waiter in woken {
            waiter.timer.cancel()
            waiter.continuation.resume(returning: index)
        }
        for subscriber in subscribers {
            for event in events { subscriber.yield(event) }
        }
    }

    /// Whether ``finish()`` was called: the agent is stopping.
    public var isFinished: Bool { storage.withLock { $0.finished } }

    /// Returns once the state has changed past `index`, or after `timeout` with the current
    /// index (a blocking query that times out answers with what is there), or at once when the
    /// feed is finished or the waiting task is cancelled (its client went away).
    public func wait(after index: UInt64, timeout: Duration) async -> UInt64 {
        await wait(after: index, timeout: timeout, endedByFinish: true)
    }

    /// For a loop that runs a round at each change or at least every `timeout`: as `wait`,
    /// except that a finished feed does not end it, the timeout does. The feed finishes as the
    /// agent starts stopping, to answer blocking queries; loops are cancelled only after the
    /// API has stopped, which waits for requests still open: returning at once meanwhile, each
    /// loop went round without pause (1.5 cores while a slow client held the shutdown).
    public func pace(after index: UInt64, timeout: Duration) async -> UInt64 {
        await wait(after: index, timeout: timeout, endedByFinish: false)
    }

    private func wait(after index: UInt64, timeout: Duration, endedByFinish: Bool) async -> UInt64 {
        let id = storage.withLock { storage in
            storage.nextWaiterID += 1
            return storage.nextWaiterID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                // Cancellation is checked under the lock that `end` takes: a cancellation
                // either comes before and is seen here, or after and finds the waiter.
                let waiting = storage.withLock { storage -> Bool in
                    guard storage.index <= index, !(endedByFinish && storage.finished), !Task.isCancelled else { return false }
                    storage.timers += 1
                    let timer = Task { [weak self] in
                        defer { self?.storage.withLock { $0.timers -= 1 } }
                        try? await Task.sleep(for: timeout)
                        guard !Task.isCancelled else { return }
                        self?.end(id)
                    }
                    storage.waiters[id] = Waiter(afterIndex: index, continuation: continuation, timer: timer)
                    return true
                }
                if !waiting { continuation.resume(returning: self.index) }
            }
        } onCancel: {
            end(id)
        }
    }

    /// Ends wait `id` with the current index, if it still waits.
    private func end(_ id: Int) {
        guard let waiter = storage.withLock({ $0.waiters.removeValue(forKey: id) }) else { return }
        waiter.timer.cancel()
        waiter.continuation.resume(returning: index)
    }

    /// Waits in progress, and the tasks that would time them out (and any that have not ended
    /// yet since they no longer need to): what blocking queries hold. For tests.
    var pending: (waits: Int, timers: Int) {
        storage.withLock { ($0.waiters.count, $0.timers) }
    }

    /// The retained events with an index above `afterIndex`, oldest first.
    public func recent(after afterIndex: UInt64) -> [ClusterEvent] {
        storage.withLock { $0.recentEvents.filter { $0.logIndex > afterIndex } }
    }

    /// Events from now on, after the recent ones whose index is above `afterIndex`.
    public func subscribe(after afterIndex: UInt64) -> AsyncStream<ClusterEvent> {
        let (stream, continuation) = AsyncStream<ClusterEvent>.makeStream(bufferingPolicy: .bufferingNewest(10_000))
        let id: Int? = storage.withLock { storage in
            for event in storage.recentEvents where event.logIndex > afterIndex { continuation.yield(event) }
            guard !storage.finished else { return nil }
            storage.nextWaiterID += 1
            storage.subscribers[storage.nextWaiterID] = continuation
            return storage.nextWaiterID
        }
        guard let id else {
            continuation.finish()
            return stream
        }
        continuation.onTermination = { [weak self] _ in
            self?.storage.withLock { _ = $0.subscribers.removeValue(forKey: id) }
        }
        return stream
    }

    /// Ends every subscription and wait (at shutdown): each answers with what it has.
    public func finish() {
        let (subscribers, waiters, index) = storage.withLock { storage in
            defer {
                storage.subscribers = [:]
                storage.waiters = [:]
                storage.finished = true
            }
            return (Array(storage.subscribers.values), Array(storage.waiters.values), storage.index)
        }
        for subscriber in subscribers { subscriber.finish() }
        for waiter in waiters {
            waiter.timer.cancel()
            waiter.continuation.resume(returning: index)
        }
    }
}
