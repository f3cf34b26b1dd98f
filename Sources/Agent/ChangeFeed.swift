import AgentAPI
import Synchronization

/// Tells the agent's API and loops what the replicated state machine just applied: the index
/// of the latest change (for blocking queries, Consul-style `?index=N&wait=30s`) and the events
/// it produced (for the event stream). Written from inside the Raft node as entries apply.
public final class ChangeFeed: Sendable {
    private struct Waiter {
        var afterIndex: UInt64
        var continuation: CheckedContinuation<UInt64, Never>
    }

    private struct Storage {
        var index: UInt64 = 0
        var recentEvents: [ClusterEvent] = []
        var nextWaiterID = 0
        var waiters: [Int: Waiter] = [:]
        var subscribers: [Int: AsyncStream<ClusterEvent>.Continuation] = [:]
        /// Set by ``finish()``: waits return at once from then on.
        var finished = false
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
        let (woken, subscribers) = storage.withLock { storage -> ([CheckedContinuation<UInt64, Never>], [AsyncStream<ClusterEvent>.Continuation]) in
            storage.index = max(storage.index, index)
            storage.recentEvents.append(contentsOf: events)
            if storage.recentEvents.count > Self.retainedEvents {
                storage.recentEvents.removeFirst(storage.recentEvents.count - Self.retainedEvents)
            }
            var woken: [CheckedContinuation<UInt64, Never>] = []
            for (id, waiter) in storage.waiters where waiter.afterIndex < storage.index {
                woken.append(waiter.continuation)
                storage.waiters[id] = nil
            }
            return (woken, Array(storage.subscribers.values))
        }
        for continuation in woken { continuation.resume(returning: index) }
        for subscriber in subscribers {
            for event in events { subscriber.yield(event) }
        }
    }

    /// Whether ``finish()`` was called: the agent is stopping.
    public var isFinished: Bool { storage.withLock { $0.finished } }

    /// Returns once the state has changed past `index`, or after `timeout` with the current
    /// index (a blocking query that times out answers with what is there), or at once when the
    /// feed is finished.
    public func wait(after index: UInt64, timeout: Duration) async -> UInt64 {
        await withCheckedContinuation { continuation in
            let id: Int? = storage.withLock { storage in
                guard storage.index <= index, !storage.finished else { return nil }
                storage.nextWaiterID += 1
                storage.waiters[storage.nextWaiterID] = Waiter(afterIndex: index, continuation: continuation)
                return storage.nextWaiterID
            }
            guard let id else {
                continuation.resume(returning: self.index)
                return
            }
            Task {
                try? await Task.sleep(for: timeout)
                if let waiter = self.storage.withLock({ $0.waiters.removeValue(forKey: id) }) {
                    waiter.continuation.resume(returning: self.index)
                }
            }
        }
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
        for waiter in waiters { waiter.continuation.resume(returning: index) }
    }
}
