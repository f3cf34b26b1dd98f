/// The log as the WAL's records describe it: the hard state, the latest durable snapshot point and
/// the entries after it. Replay feeds it every record in file order; the live storage feeds it
/// each durable batch, so both arrive at the same state by the same rules.
struct LogState: Sendable, Equatable {
    var hardState = HardState()
    /// The latest snapshot made durable; entries up to its index are compacted away.
    var snapshot = SnapshotMetadata()
    /// Contiguous entries; `entries[0].index == start`.
    var entries: [Entry] = []
    /// The index of `entries[0]`. Equal to `snapshot.index + 1` except while replay is inside a
    /// hole (see `append(_:allowingHole:)`).
    var start: UInt64 = 1

    var lastIndex: UInt64 { start + UInt64(entries.count) - 1 }

    /// True while entries between the snapshot and `start` are unknown.
    var hasHole: Bool { start > snapshot.index + 1 }

    func entry(at index: UInt64) -> Entry? {
        guard index >= start, index <= lastIndex else { return nil }
        return entries[Int(index - start)]
    }

    /// The term at `index`: an entry's, or the snapshot's at its own index.
    func term(at index: UInt64) -> UInt64? {
        if index == snapshot.index { return snapshot.term }
        return entry(at: index)?.term
    }

    enum AppendOutcome: Equatable {
        case appended
        /// At or before the snapshot: already compacted, nothing to do.
        case stale
        /// Would leave a hole after `lastIndex`.
        case gap(expected: UInt64)
    }

    /// Appends `entry`, replacing any entry at its index and all after it (Raft paper §5.3: a
    /// conflicting leader overwrites a follower's suffix; the later record is the truth).
    ///
    /// `allowingHole` is for the first entry replay meets: releasing segments wholly before a
    /// snapshot can leave the oldest kept segment starting with entries past the snapshot marker
    /// it carries in its header. A later marker in the log covers the hole; `hasHole` after
    /// replay means none did.
    mutating func append(_ entry: Entry, allowingHole: Bool = false) -> AppendOutcome {
        if entry.index <= snapshot.index { return .stale }
        if entry.index > lastIndex + 1 {
            guard allowingHole else { return .gap(expected: lastIndex + 1) }
            entries = [entry]
            start = entry.index
            return .appended
        }
        if entry.index < start {
            // Inside a hole: the entry starts a new known suffix there.
            entries = [entry]
            start = entry.index
            return .appended
        }
        entries.removeSubrange(Int(entry.index - start)...)
        entries.append(entry)
        return .appended
    }

    /// The first of `entries` that appending them in order would leave after a gap, and the
    /// index `append` expected instead; nil if none would. A check without copying the log.
    func gap(appending entries: [Entry]) -> (index: UInt64, expected: UInt64)? {
        var last = lastIndex
        for entry in entries where entry.index > snapshot.index {
            if entry.index > last + 1 { return (entry.index, last + 1) }
            last = entry.index
        }
        return nil
    }

    /// Records that a snapshot at `metadata` is durable (Raft paper §7): if the log holds the
    /// snapshot's last entry with the same term, the entries after it are kept; otherwise the
    /// whole log is discarded. Older snapshots are ignored.
    mutating func apply(snapshot metadata: SnapshotMetadata) {
        guard metadata.index > snapshot.index else { return }
        if metadata.index < start - 1 {
            // Replay inside a hole: the entries at the snapshot's index were released unseen and
            // the known suffix stays; a later entry before `start` would correct it.
            snapshot = metadata
            return
        }
        if metadata.index == start - 1 {
            snapshot = metadata
            return
        }
        if let kept = entry(at: metadata.index), kept.term == metadata.term {
            entries.removeSubrange(..<Int(metadata.index - start + 1))
        } else {
            entries = []
        }
        start = metadata.index + 1
        snapshot = metadata
    }
}
