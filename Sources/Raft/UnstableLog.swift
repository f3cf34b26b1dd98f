/// The part of the log not yet persisted: entries the application has not yet written, and a
/// snapshot received from the leader that it has not yet installed (etcd raft's `unstable`).
/// Entries `offset ..< offset + entries.count`; the persisted log holds everything before.
struct UnstableLog {
    var snapshot: Snapshot?
    var entries: [Entry] = []
    var offset: UInt64

    /// The first index, if a snapshot is pending (otherwise the persisted log knows it).
    var firstIndexIfKnown: UInt64? {
        snapshot.map { $0.metadata.index + 1 }
    }

    /// The last index, if there are unstable entries or a pending snapshot.
    var lastIndexIfKnown: UInt64? {
        if !entries.isEmpty { return offset + UInt64(entries.count) - 1 }
        return snapshot?.metadata.index
    }

    func term(at index: UInt64) -> UInt64? {
        if index < offset {
            if let snapshot, snapshot.metadata.index == index { return snapshot.metadata.term }
            return nil
        }
        guard let last = lastIndexIfKnown, index <= last else { return nil }
        if entries.isEmpty { return nil }
        return entries[Int(index - offset)].term
    }

    /// The application persisted entries up to `index`; drop them unless they have since been
    /// replaced (a follower may overwrite entries while a `Ready` is being persisted).
    mutating func stable(to index: UInt64, term: UInt64) {
        guard index >= offset, self.term(at: index) == term else { return }
        entries.removeFirst(Int(index + 1 - offset))
        offset = index + 1
    }

    mutating func stableSnapshot(to index: UInt64) {
        if snapshot?.metadata.index == index { snapshot = nil }
    }

    mutating func restore(_ newSnapshot: Snapshot) {
        offset = newSnapshot.metadata.index + 1
        entries = []
        snapshot = newSnapshot
    }

    /// Appends `newEntries`, first dropping entries from the first new index on.
    mutating func truncateAndAppend(_ newEntries: [Entry]) {
        guard let first = newEntries.first else { return }
        let after = first.index
        if after == offset + UInt64(entries.count) {
            entries.append(contentsOf: newEntries)
        } else if after <= offset {
            // Replaces everything unstable and part of the persisted log: the application's
            // next append overwrites that part of its storage.
            offset = after
            entries = newEntries
        } else {
            entries.removeSubrange(Int(after - offset)...)
            entries.append(contentsOf: newEntries)
        }
    }

    func slice(from lowIndex: UInt64, upTo highIndex: UInt64) -> ArraySlice<Entry> {
        precondition(lowIndex >= offset && highIndex <= offset + UInt64(entries.count) && lowIndex <= highIndex,
                     "unstable slice \(lowIndex)..<\(highIndex) out of \(offset)..<\(offset + UInt64(entries.count))")
        return entries[Int(lowIndex - offset)..<Int(highIndex - offset)]
    }
}
