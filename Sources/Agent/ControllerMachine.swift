import AgentAPI
import Controller
import Raft

/// The cluster state as Raft's state machine: committed entries are applied to a
/// ``ClusterState`` in log order; the result of each is kept a while for the proposer that
/// waits on it, and the change is published on the ``ChangeFeed``: a change of the key-value
/// store on a feed of its own, so that configuration writes do not wake the leader's planning,
/// the node workers and every watch of the cluster's state.
public struct ControllerMachine: RaftStateMachine {
    public private(set) var state = ClusterState()
    /// Results by log index, for proposers; only the newest are kept.
    private var results: [UInt64: CommandResult] = [:]
    private var oldestResult: UInt64 = 0
    public let feed: ChangeFeed
    /// Changes of the key-value store (its `lastChangeIndex`).
    public let kvFeed: ChangeFeed
    /// The members and nodes, published as they change for checks off the node's actor.
    public let directory: MembershipDirectory

    /// Results older than this many entries are dropped; a proposer reads its own at once.
    static let retainedResults: UInt64 = 4096

    public init(feed: ChangeFeed, kvFeed: ChangeFeed = ChangeFeed(), directory: MembershipDirectory = MembershipDirectory()) {
        self.feed = feed
        self.kvFeed = kvFeed
        self.directory = directory
    }

    public mutating func apply(_ entry: Entry) {
        let decoded: ControllerEntry
        do {
            decoded = try ControllerEntry.decode(entry.data)
        } catch {
            results[entry.index] = .rejected(error)
            return
        }
        let before = state.lastChangeIndex
        let kvBefore = state.kv.lastChangeIndex
        let result = state.apply(decoded.command, at: entry.index, time: decoded.time)
        results[entry.index] = result
        while oldestResult + Self.retainedResults < entry.index {
            results[oldestResult] = nil
            oldestResult += 1
        }
        directory.applied(decoded.command, to: state)
        if state.lastChangeIndex != before {
            let events = ClusterEventDescriber.events(for: decoded.command, result: result, at: entry.index, time: decoded.time, in: state)
            feed.publish(index: state.lastChangeIndex, events: events)
        }
        if state.kv.lastChangeIndex != kvBefore { kvFeed.publish(index: state.kv.lastChangeIndex, events: []) }
    }

    /// What applying the entry at `index` did, if it is still known.
    public func result(at index: UInt64) -> CommandResult? {
        results[index]
    }

    public func snapshot() -> [UInt8] {
        state.snapshot()
    }

    public mutating func restore(from snapshot: [UInt8]) throws {
        state = try ClusterState.restore(from: snapshot)
        directory.restored(state)
        results = [:]
        feed.publish(index: state.lastChangeIndex, events: [])
        kvFeed.publish(index: state.kv.lastChangeIndex, events: [])
    }
}
