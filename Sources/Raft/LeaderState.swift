/// What only a leader keeps: its view of every follower, reads waiting for confirmation, and a
/// leadership transfer under way.
struct LeaderState {
    /// Every member's progress, this node's included (its `match` is what it has persisted).
    var progress: [NodeID: Progress] = [:]
    /// The other members, sorted so that messages go out in a reproducible order.
    private(set) var peers: [NodeID] = []
    var reads = ReadIndexQueue()
    /// The node leadership is being handed to, or zero (thesis §3.10).
    var transferTarget: NodeID = 0
    var heartbeatElapsedTicks = 0
    /// New entries were appended since appends were last sent; they go out with the next
    /// `Ready`, all in one message per follower (batching).
    var needsBroadcast = false
    /// Bytes of the proposals appended in this term that are not committed yet, and each
    /// one's index and size in log order (`RaftConfig.maxUncommittedBytes`).
    private(set) var uncommittedBytes = 0
    private var uncommittedProposals: [(index: UInt64, bytes: Int)] = []

    init(membership: ConfState, selfID: NodeID, lastIndex: UInt64, selfPersistedIndex: UInt64, maxInflight: Int) {
        var own = Progress(next: lastIndex + 1, maxInflight: 1)
        own.match = selfPersistedIndex
        own.recentActive = true
        progress[selfID] = own
        updateMembership(membership, selfID: selfID, nextIndex: lastIndex + 1, maxInflight: maxInflight)
        // Followers start as active: they have not had an election timeout to answer yet.
        for id in peers { progress[id]?.recentActive = true }
    }

    /// Tracks members added and forgets members removed; a new member starts in probe at
    /// `nextIndex` (etcd raft marks it active so that check-quorum gives it a chance to answer).
    mutating func updateMembership(_ conf: ConfState, selfID: NodeID, nextIndex: UInt64, maxInflight: Int) {
        let members = conf.voters.union(conf.learners)
        for id in members where progress[id] == nil {
            var added = Progress(next: nextIndex, maxInflight: maxInflight)
            added.recentActive = true
            progress[id] = added
        }
        for id in progress.keys where id != selfID && !members.contains(id) {
            progress[id] = nil
        }
        peers = progress.keys.filter { $0 != selfID }.sorted()
        if transferTarget != 0 && !conf.voters.contains(transferTarget) { transferTarget = 0 }
    }

    /// Whether a majority of voters were heard from since the last check (thesis §6.2).
    func quorumRecentlyActive(voters: Set<NodeID>, selfID: NodeID) -> Bool {
        let active = voters.count(where: { $0 == selfID || progress[$0]?.recentActive == true })
        return active >= voters.count / 2 + 1
    }

    mutating func markAllInactive(except selfID: NodeID) {
        for id in peers { progress[id]?.recentActive = false }
        progress[selfID]?.recentActive = true
    }

    /// The highest index a majority of voters hold (paper §5.3, §5.4.2 adds the term check).
    func quorumMatchIndex(voters: Set<NodeID>) -> UInt64 {
        Self.majorityValue(voters.map { progress[$0]?.match ?? 0 })
    }

    /// `quorumMatchIndex` with `node`'s match taken to be `match`.
    func quorumMatchIndex(voters: Set<NodeID>, taking node: NodeID, at match: UInt64) -> UInt64 {
        Self.majorityValue(voters.map { $0 == node ? match : progress[$0]?.match ?? 0 })
    }

    /// The highest read round a majority of voters acknowledged (thesis §6.4 step 3).
    func quorumReadRound(voters: Set<NodeID>) -> UInt64 {
        Self.majorityValue(voters.map { progress[$0]?.readRoundAcked ?? 0 })
    }

    /// The largest value that at least a majority of `values` reach.
    static func majorityValue(_ values: [UInt64]) -> UInt64 {
        precondition(!values.isEmpty, "no voters")
        let sorted = values.sorted(by: >)
        return sorted[sorted.count / 2]
    }

    /// A proposal of `bytes` was appended at `index`.
    mutating func noteUncommitted(index: UInt64, bytes: Int) {
        uncommittedProposals.append((index, bytes))
        uncommittedBytes += bytes
    }

    /// The log is committed up to `index`: its proposals no longer count.
    mutating func releaseUncommitted(upTo index: UInt64) {
        let committed = uncommittedProposals.prefix { $0.index <= index }
        guard !committed.isEmpty else { return }
        uncommittedBytes -= committed.reduce(0) { $0 + $1.bytes }
        uncommittedProposals.removeFirst(committed.count)
    }
}
