import Raft

/// A node's disk: what survived the last sync, plus at most one write in flight (the
/// `Ready` being persisted). A crash loses the write in flight, or tears it: records reach
/// the disk in order, so a prefix of its entries may survive (the write-ahead log truncates
/// a torn last record on recovery), never the hard state written after them.
struct SimDisk {
    private(set) var snapshot: Snapshot
    private(set) var hardState = HardState()
    private(set) var entries: [Entry] = []
    private(set) var inFlight: Ready?

    init(bootstrap conf: ConfState) {
        let log = BootstrapLog(members: conf)
        snapshot = Snapshot()
        hardState = log.hardState
        entries = log.entries
    }

    mutating func beginWrite(_ ready: Ready) {
        precondition(inFlight == nil, "one write at a time")
        inFlight = ready
    }

    /// The write in flight reached the disk.
    mutating func sync() {
        guard let ready = inFlight else { return }
        inFlight = nil
        write(snapshot: ready.snapshot, entries: ready.entries[...], hardState: ready.hardState)
    }

    /// Power loss: returns what happened to the write in flight, for the trace.
    mutating func crash(_ random: inout SimRandom) -> String {
        guard let ready = inFlight else { return "nothing in flight" }
        inFlight = nil
        guard random.chance(0.5) else { return "write lost" }
        // Torn: the snapshot file (renamed into place) either made it or not; entries after
        // it reach the disk in order, a prefix of them survives.
        if ready.snapshot != nil && random.chance(0.5) { return "write lost (snapshot not renamed)" }
        let kept = random.int(in: 0...ready.entries.count)
        write(snapshot: ready.snapshot, entries: ready.entries.prefix(kept), hardState: nil)
        return "write torn: \(kept) of \(ready.entries.count) entries kept"
    }

    /// The application's own snapshot, written (temp file, fsync, rename) before the log is
    /// compacted: durable at once.
    mutating func compact(to newSnapshot: Snapshot) {
        let index = newSnapshot.metadata.index
        precondition(index > snapshot.metadata.index && index <= snapshot.metadata.index + UInt64(entries.count))
        entries.removeFirst(Int(index - snapshot.metadata.index))
        snapshot = newSnapshot
    }

    /// The in-memory log a restarted node reads.
    func recover() -> MemoryStorage {
        MemoryStorage(snapshot: snapshot, hardState: hardState, entries: entries)
    }

    private mutating func write(snapshot newSnapshot: Snapshot?, entries newEntries: ArraySlice<Entry>, hardState newState: HardState?) {
        if let newSnapshot {
            snapshot = newSnapshot
            entries = []
        }
        // Entries the snapshot already covers are skipped, as MemoryStorage does.
        let fresh = newEntries.drop { $0.index <= snapshot.metadata.index }
        if let first = fresh.first {
            let keep = Int(first.index - snapshot.metadata.index - 1)
            precondition(keep >= 0 && keep <= entries.count, "write leaves a gap")
            entries.removeSubrange(keep...)
            entries.append(contentsOf: fresh)
        }
        if let newState { hardState = newState }
    }
}
