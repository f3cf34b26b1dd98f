/// The append messages sent to one follower and not yet acknowledged, as the last index each
/// carried: the window that bounds pipelining (etcd raft's `tracker.Inflights`).
struct Inflights: Sendable, Hashable {
    /// The most messages in flight at once.
    let capacity: Int
    /// A ring buffer of last indexes, in the order sent (and so increasing).
    private var buffer: [UInt64]
    private var start = 0
    private(set) var count = 0

    init(capacity: Int) {
        precondition(capacity > 0, "inflight capacity must be positive")
        self.capacity = capacity
        self.buffer = []
    }

    var isFull: Bool { count == capacity }

    /// Records a message whose last entry is `lastIndex`.
    mutating func add(_ lastIndex: UInt64) {
        precondition(!isFull, "adding to full inflights")
        if buffer.count < capacity {
            // Grows lazily: most followers never have many messages in flight.
            buffer.reserveCapacity(capacity)
            while buffer.count < capacity { buffer.append(0) }
        }
        let slot = (start + count) % capacity
        if count > 0 {
            precondition(buffer[(start + count - 1) % capacity] < lastIndex, "inflights must increase")
        }
        buffer[slot] = lastIndex
        count += 1
    }

    /// Frees every message whose last index is at most `index`: the follower acknowledged it.
    mutating func free(upTo index: UInt64) {
        while count > 0 && buffer[start] <= index {
            start = (start + 1) % capacity
            count -= 1
        }
        if count == 0 { start = 0 }
    }

    /// Frees the oldest message: used when the window is full but the follower answered a
    /// heartbeat, since the appends in flight may all have been lost (etcd raft).
    mutating func freeFirst() {
        guard count > 0 else { return }
        start = (start + 1) % capacity
        count -= 1
        if count == 0 { start = 0 }
    }

    mutating func reset() {
        start = 0
        count = 0
    }
}
