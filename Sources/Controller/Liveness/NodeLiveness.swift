/// The leader's memory of when it last heard from each node (Nomad's heartbeat timers,
/// Consul's serf health): heartbeats land here, in memory, not in the Raft log, so a thousand
/// nodes beating every second cost the log nothing while nothing changes. Only transitions are
/// committed: a node silent past `ttl` goes down, a down node heard again comes up.
///
/// A new leader has heard nobody yet: `becameLeader` gives every node a fresh `ttl` from that
/// moment, so a leader change alone never marks a healthy node down. That grace keeps an up
/// node up; it does not bring a down node back: only a heartbeat does.
public struct NodeLiveness: Sendable {
    public typealias Instant = ContinuousClock.Instant

    /// A change to commit.
    public enum Transition: Sendable, Hashable {
        case down(node: String)
        case up(node: String)
    }

    /// How long a node may be silent before it is down.
    public var ttl: Duration
    private var lastHeard: [String: Instant] = [:]
    /// Nodes whose time in `lastHeard` is a grace this leader gave, not a heartbeat.
    private var graced: Set<String> = []

    public init(ttl: Duration) {
        self.ttl = ttl
    }

    /// This node has just become leader at `now`: every known node starts a fresh `ttl`.
    public mutating func becameLeader(at now: Instant, nodes: some Sequence<String>) {
        lastHeard = [:]
        graced = []
        for node in nodes { startGrace(for: node, at: now) }
    }

    /// `node` has no time here yet (see `unknown(among:)`): it gets `ttl` from `now`.
    public mutating func startGrace(for node: String, at now: Instant) {
        lastHeard[node] = now
        graced.insert(node)
    }

    /// A heartbeat from `node` arrived at `now`.
    public mutating func heard(from node: String, at now: Instant) {
        graced.remove(node)
        if let last = lastHeard[node], last >= now { return }
        lastHeard[node] = now
    }

    /// Forgets a node that left the cluster.
    public mutating func forget(_ node: String) {
        lastHeard.removeValue(forKey: node)
        graced.remove(node)
    }

    /// When `node` was last heard from (or its grace began), if ever.
    public func lastHeard(from node: String) -> Instant? { lastHeard[node] }

    /// What to commit at `now`, given each node's committed state (`isDown`): nodes silent past
    /// the ttl that are up go down; down nodes heard within it come up (a grace alone does not
    /// bring one up). A node this leader has no time for (it registered before the leader knew
    /// it) gets one now rather than a verdict: call `becameLeader` or `startGrace` for it first.
    public func transitions(committed: [String: Bool], at now: Instant) -> [Transition] {
        var transitions: [Transition] = []
        for (node, isDown) in committed.sorted(by: { $0.key < $1.key }) {
            guard let last = lastHeard[node] else { continue }
            let silent = now - last > ttl
            if silent && !isDown { transitions.append(.down(node: node)) }
            if !silent && isDown && !graced.contains(node) { transitions.append(.up(node: node)) }
        }
        return transitions
    }

    /// Nodes committed but not known here yet, to start a grace for.
    public func unknown(among nodes: some Sequence<String>) -> [String] {
        nodes.filter { lastHeard[$0] == nil }
    }
}
