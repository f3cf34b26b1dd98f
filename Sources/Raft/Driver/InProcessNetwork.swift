import Synchronization

/// A transport between nodes in one process, for tests and the driver's own checks: messages go
/// straight to the receiving node's inbox, and links can be cut and healed to make partitions.
///
/// A class with a lock rather than an actor: `RaftTransport.send` must not suspend (the sender
/// is inside its own actor, mid-Ready), and a synchronous hand-off keeps each link's messages in
/// order, as a TCP connection would.
public final class InProcessNetwork: RaftTransport, Sendable {
    private struct State {
        var receivers: [NodeID: any RaftMessageReceiver] = [:]
        /// Unordered pairs whose traffic is dropped, both ways.
        var cutLinks: Set<[NodeID]> = []
        /// Drops the messages it matches, on top of the cut links.
        var dropRule: (@Sendable (Message) -> Bool)?
        var deliveredCount = 0
        var droppedCount = 0
    }

    private let state = Mutex(State())

    /// An empty network.
    public init() {}

    /// Routes messages addressed to `id` to `receiver` (replacing any earlier one: a restart).
    public func register(_ id: NodeID, _ receiver: any RaftMessageReceiver) {
        state.withLock { $0.receivers[id] = receiver }
    }

    /// Drops messages addressed to `id` from now on, as if its process died.
    public func unregister(_ id: NodeID) {
        state.withLock { _ = $0.receivers.removeValue(forKey: id) }
    }

    /// Drops all traffic between `a` and `b`, both ways.
    public func cut(_ a: NodeID, _ b: NodeID) {
        state.withLock { _ = $0.cutLinks.insert([a, b].sorted()) }
    }

    /// Restores traffic between `a` and `b`.
    public func heal(_ a: NodeID, _ b: NodeID) {
        state.withLock { _ = $0.cutLinks.remove([a, b].sorted()) }
    }

    /// Cuts `id` off from every other registered node.
    public func isolate(_ id: NodeID) {
        state.withLock { state in
            for other in state.receivers.keys where other != id { state.cutLinks.insert([id, other].sorted()) }
        }
    }

    /// Restores every link.
    public func healAll() {
        state.withLock { $0.cutLinks.removeAll() }
    }

    /// Drops every message `rule` matches (for example, appends to one node, so that it learns
    /// of the leader by heartbeats but falls behind); nil delivers everything again.
    public func setDropRule(_ rule: (@Sendable (Message) -> Bool)?) {
        state.withLock { $0.dropRule = rule }
    }

    /// Messages delivered and dropped so far.
    public var counts: (delivered: Int, dropped: Int) {
        state.withLock { ($0.deliveredCount, $0.droppedCount) }
    }

    /// Hands each message to its receiver's inbox, unless the link is cut or nobody listens.
    public func send(_ messages: [Message]) {
        var batches: [NodeID: [Message]] = [:]
        let receivers = state.withLock { state -> [NodeID: any RaftMessageReceiver] in
            for message in messages {
                if state.cutLinks.contains([message.from, message.to].sorted()) || state.receivers[message.to] == nil
                    || state.dropRule?(message) == true {
                    state.droppedCount += 1
                } else {
                    batches[message.to, default: []].append(message)
                    state.deliveredCount += 1
                }
            }
            return state.receivers
        }
        // Outside the lock: a receiver's inbox may run code of its own.
        for (to, batch) in batches { receivers[to]?.receive(batch) }
    }
}
