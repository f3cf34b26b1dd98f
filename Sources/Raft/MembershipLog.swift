/// The membership at each point of the log. A node always uses the latest configuration in its
/// log, committed or not, and falls back to the previous one if that entry is overwritten
/// (thesis §4.1). This is what keeps single-server changes safe: no two nodes can use
/// configurations more than one change apart, so any two majorities overlap.
struct MembershipLog {
    /// The membership at the snapshot.
    private(set) var baseIndex: UInt64
    private(set) var baseConf: ConfState
    /// A configuration entry's index and the membership it results in.
    struct Change {
        let index: UInt64
        let conf: ConfState
    }

    /// The configuration entries after the snapshot, in log order.
    private(set) var changes: [Change] = []

    init(snapshot metadata: SnapshotMetadata) {
        baseIndex = metadata.index
        baseConf = metadata.confState
    }

    /// The configuration in force: the latest in the log.
    var current: ConfState { changes.last?.conf ?? baseConf }

    /// The index of the latest configuration entry, or the snapshot's.
    var currentIndex: UInt64 { changes.last?.index ?? baseIndex }

    /// Takes into account a configuration entry just appended to the log.
    mutating func record(_ entry: Entry) {
        precondition(entry.kind == .configChange, "not a configuration entry: \(entry)")
        precondition(entry.index > currentIndex, "configuration entries out of order")
        let change: ConfChange
        do {
            change = try ConfChange(decoding: entry.data)
        } catch {
            preconditionFailure("undecodable configuration entry \(entry.index): \(error)")
        }
        changes.append(Change(index: entry.index, conf: change.applied(to: current)))
    }

    /// Forgets configuration entries from `index` on: they were overwritten (thesis §4.1).
    mutating func truncate(from index: UInt64) {
        precondition(index > baseIndex, "truncating into the snapshot")
        while let last = changes.last, last.index >= index { changes.removeLast() }
    }

    /// The membership in force at `index`.
    func conf(at index: UInt64) -> ConfState {
        changes.last(where: { $0.index <= index })?.conf ?? baseConf
    }

    /// The log up to `index` became a snapshot.
    mutating func compact(to index: UInt64) {
        guard index > baseIndex else { return }
        baseConf = conf(at: index)
        baseIndex = index
        changes.removeAll { $0.index <= index }
    }

    /// The log was replaced by a snapshot from the leader.
    mutating func reset(to metadata: SnapshotMetadata) {
        baseIndex = metadata.index
        baseConf = metadata.confState
        changes = []
    }
}
