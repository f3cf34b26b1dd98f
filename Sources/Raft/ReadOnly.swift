/// A linearizable read the application asked for: once it has applied up to `index`, it may
/// answer the read identified by `context` from its state machine (thesis §6.4).
public struct ReadState: Sendable, Hashable {
    /// The commit index at the time of the request, confirmed by a quorum since.
    public var index: UInt64
    /// The application's identifier for the read.
    public var context: [UInt8]

    /// Creates a read state.
    public init(index: UInt64, context: [UInt8]) {
        self.index = index
        self.context = context
    }
}

/// The leader's reads waiting for a quorum to confirm that it is still the leader (thesis
/// §6.4, ReadIndex without leases). Each read gets a round number; heartbeats carry the latest
/// round and followers echo it; a round acknowledged by a quorum releases every read up to it.
struct ReadIndexQueue {
    struct PendingRead {
        let round: UInt64
        let index: UInt64
        let requester: NodeID
        let context: [UInt8]
    }

    /// The latest round handed out.
    private(set) var lastRound: UInt64 = 0
    /// Reads with a round, in round order.
    private(set) var pending: [PendingRead] = []
    /// A read not yet given an index.
    struct WaitingRead {
        let requester: NodeID
        let context: [UInt8]
    }

    /// Reads that arrived before the leader committed an entry of its term, when its commit
    /// index may still be behind the group's (thesis §6.4 step 1).
    var waitingForCommit: [WaitingRead] = []

    /// Queues a read at `index`; returns its round, to broadcast in heartbeats.
    mutating func add(index: UInt64, requester: NodeID, context: [UInt8]) -> UInt64 {
        lastRound += 1
        pending.append(PendingRead(round: lastRound, index: index, requester: requester, context: context))
        return lastRound
    }

    /// Removes and returns the reads up to `round`, now confirmed.
    mutating func release(upTo round: UInt64) -> ArraySlice<PendingRead> {
        let count = pending.prefix(while: { $0.round <= round }).count
        let released = pending.prefix(count)
        pending.removeFirst(count)
        return released
    }
}
