import NIOCore
import Raft
import Synchronization

/// What waits for one peer, and the connection it goes out on.
///
/// `send` never blocks and never waits for the network (`RaftTransport`): messages are encoded,
/// queued up to the configured bounds (past them they are dropped and counted: Raft resends
/// what matters), and a flush is scheduled on the connection's event loop, which writes
/// everything queued by then as one frame and flushes once.
///
/// Only while the connection is writable: a peer that stops reading (hung, or its network
/// gone silent before TCP gives up) fills the socket, and what would be written then waits
/// here, within the bounds, instead of in the channel's buffer, which has none. The
/// connection's writability coming back (`resumeFlushing`) writes it.
final class PeerLink: Sendable {
    /// Counters, for tests and metrics.
    struct Statistics: Sendable, Hashable {
        var messagesSent = 0
        var messagesDropped = 0
        var connectionsAttached = 0
    }

    private struct State {
        var peer: ClusterPeer
        var queue: [[UInt8]] = []
        var queuedBytes = 0
        var channel: (any Channel)?
        var flushScheduled = false
        var statistics = Statistics()
        var closed = false
        /// In the peer list given to `setPeers` (else made for an inbound connection).
        var listed = false
        /// This side keeps a connection to the peer (it has the lower id).
        var dialed = false
    }

    private let state: Mutex<State>
    let maximumQueuedMessages: Int
    let maximumQueuedBytes: Int
    let maximumFramePayloadBytes: Int

    init(peer: ClusterPeer, configuration: TransportConfiguration) {
        state = Mutex(State(peer: peer))
        maximumQueuedMessages = configuration.maximumQueuedMessages
        maximumQueuedBytes = configuration.maximumQueuedBytes
        maximumFramePayloadBytes = configuration.maximumFramePayloadBytes
    }

    var peer: ClusterPeer {
        get { state.withLock { $0.peer } }
        set { state.withLock { $0.peer = newValue } }
    }

    var statistics: Statistics { state.withLock { $0.statistics } }
    var isConnected: Bool { state.withLock { $0.channel != nil } }
    /// The connection up now, if any.
    var channel: (any Channel)? { state.withLock { $0.channel } }
    var isClosed: Bool { state.withLock { $0.closed } }
    var isListed: Bool { state.withLock { $0.listed } }

    /// Marks the link as listed; true when this side should start dialing it now (`dialed`,
    /// and not dialing yet).
    func markListed(dialed: Bool) -> Bool {
        state.withLock { state in
            state.listed = true
            guard dialed, !state.dialed else { return false }
            state.dialed = true
            return true
        }
    }

    /// Queues `messages` (already encoded) and schedules a flush when connected.
    func enqueue(_ messages: [[UInt8]]) {
        let channel = state.withLock { state -> (any Channel)? in
            guard !state.closed else { return nil }
            for bytes in messages {
                // A message no frame can hold would only make the peer close the connection;
                // Raft's own limits (append size, snapshot chunks) keep real ones far below.
                guard bytes.count <= maximumFramePayloadBytes - 8, state.queue.count < maximumQueuedMessages, state.queuedBytes + bytes.count <= maximumQueuedBytes else {
                    state.statistics.messagesDropped += 1
                    continue
                }
                state.queue.append(bytes)
                state.queuedBytes += bytes.count
            }
            return Self.claimFlush(&state)
        }
        channel.map(scheduleFlush)
    }

    /// The channel to flush on, if one is attached, writable, and no flush is pending yet.
    private static func claimFlush(_ state: inout State) -> (any Channel)? {
        guard let channel = state.channel, !state.flushScheduled, !state.queue.isEmpty, channel.isWritable else { return nil }
        state.flushScheduled = true
        return channel
    }

    private func scheduleFlush(on channel: any Channel) {
        channel.eventLoop.execute { self.flush(on: channel) }
    }

    /// On the channel's event loop: everything queued goes out in as few frames as the frame
    /// limit allows, then one flush.
    private func flush(on channel: any Channel) {
        let batch = state.withLock { state -> [[UInt8]] in
            state.flushScheduled = false
            guard state.channel === channel, channel.isWritable else { return [] }
            defer {
                state.queue.removeAll(keepingCapacity: true)
                state.queuedBytes = 0
            }
            state.statistics.messagesSent += state.queue.count
            return state.queue
        }
        guard !batch.isEmpty else { return }
        var start = 0
        var bytes = 4
        for (position, message) in batch.enumerated() {
            if bytes + 4 + message.count > maximumFramePayloadBytes && position > start {
                channel.write(RaftBatch.frame(encoded: batch[start..<position]), promise: nil)
                (start, bytes) = (position, 4)
            }
            bytes += 4 + message.count
        }
        channel.write(RaftBatch.frame(encoded: batch[start...]), promise: nil)
        channel.flush()
    }

    /// A connection to the peer is ready (handshake done, names checked): it replaces any
    /// earlier one, and what was queued goes out.
    func attach(_ channel: any Channel) {
        let (previous, flushOn) = state.withLock { state -> ((any Channel)?, (any Channel)?) in
            // Closed (its peer removed) between the hello's lookup and now: the connection goes too.
            guard !state.closed else { return (channel, nil) }
            let previous = state.channel === channel ? nil : state.channel
            state.channel = channel
            state.flushScheduled = false
            state.statistics.connectionsAttached += 1
            return (previous, Self.claimFlush(&state))
        }
        previous?.close(promise: nil)
        flushOn.map(scheduleFlush)
    }

    /// On `channel`'s event loop, when it has become writable again: what queued meanwhile goes out.
    func resumeFlushing(_ channel: any Channel) {
        let flushOn = state.withLock { state in state.channel === channel ? Self.claimFlush(&state) : nil }
        flushOn.map(scheduleFlush)
    }

    /// The connection `channel` is gone; messages queue until the next one.
    func detach(_ channel: any Channel) {
        state.withLock { state in
            if state.channel === channel { state.channel = nil }
        }
    }

    /// Stops the link: drops what is queued and closes its connection.
    func close() {
        let channel = state.withLock { state -> (any Channel)? in
            state.closed = true
            state.queue.removeAll()
            state.queuedBytes = 0
            defer { state.channel = nil }
            return state.channel
        }
        channel?.close(promise: nil)
    }
}
