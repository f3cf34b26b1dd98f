import Raft

/// A node's disk: what survived the last sync, plus the writes in flight, in the order they
/// were submitted (the WAL writes them so). A leader's `Ready` is advanced as soon as it is
/// submitted (`RaftCore.advance(_:durable: false)`), so several of its writes may be in flight;
/// any other `Ready` waits for its write and every one before it. A crash keeps a prefix of
/// what was in flight: whole writes, then perhaps a torn one, of which a prefix of its entries
/// survives (the write-ahead log truncates a torn last record on recovery), never the hard
/// state written after them.
struct SimDisk {
    /// A write submitted and not yet synced.
    struct Write {
        var ready: Ready
        /// Whether the core advanced past it before it was durable (a leader's).
        var advanced: Bool
    }

    private(set) var snapshot: Snapshot
    private(set) var hardState = HardState()
    private(set) var entries: [Entry] = []
    private(set) var inFlight: [Write] = []
    /// Application snapshots taken while writes were in flight: recorded after them, as the
    /// WAL's snapshot marker is; each with how many writes then in flight it follows.
    private var compactionsInFlight: [(after: Int, snapshot: Snapshot)] = []

    init(bootstrap conf: ConfState) {
        let log = BootstrapLog(members: conf)
        snapshot = Snapshot()
        hardState = log.hardState
        entries = log.entries
    }

    mutating func beginWrite(_ ready: Ready, advanced: Bool) {
        inFlight.append(Write(ready: ready, advanced: advanced))
    }

    /// The oldest write in flight reached the disk; returns it.
    mutating func sync() -> Write? {
        guard !inFlight.isEmpty else { return nil }
        let write = inFlight.removeFirst()
        self.write(snapshot: write.ready.snapshot, entries: write.ready.entries[...], hardState: write.ready.hardState)
        for index in compactionsInFlight.indices { compactionsInFlight[index].after -= 1 }
        while let first = compactionsInFlight.first, first.after == 0 {
            compactionsInFlight.removeFirst()
            compactNow(to: first.snapshot)
        }
        return write
    }

    /// Power loss: returns what happened to the writes in flight, for the trace, and how many
    /// of the writes lost (or torn) had been advanced past by a leader.
    mutating func crash(_ random: inout SimRandom) -> (trace: String, lostAdvancedWrites: Int) {
        guard !inFlight.isEmpty else { return ("nothing in flight", 0) }
        // Whole writes first (with the compactions recorded between them), then the next one
        // lost or torn.
        let whole = random.chance(0.5) ? 0 : random.int(in: 0...inFlight.count - 1)
        for _ in 0..<whole { _ = sync() }
        let lostAdvanced = inFlight.count(where: \.advanced)
        return (tearOrLose(whole: whole, random: &random), lostAdvanced)
    }

    private mutating func tearOrLose(whole: Int, random: inout SimRandom) -> String {
        defer {
            inFlight = []
            compactionsInFlight = []
        }
        let count = whole + inFlight.count
        guard let next = inFlight.first, random.chance(0.5) else {
            return "\(whole) of \(count) writes kept, the rest lost"
        }
        // Torn: the snapshot file (renamed into place) either made it or not; entries after
        // it reach the disk in order, a prefix of them survives.
        if next.ready.snapshot != nil && random.chance(0.5) {
            return "\(whole) of \(count) writes kept, the next lost (snapshot not renamed)"
        }
        let kept = random.int(in: 0...next.ready.entries.count)
        write(snapshot: next.ready.snapshot, entries: next.ready.entries.prefix(kept), hardState: nil)
        return "\(whole) of \(count) writes kept, the next torn: \(kept) of \(next.ready.entries.count) entries kept"
    }

    /// The application's own snapshot, written (temp file, fsync, rename) before the log is
    /// compacted: durable at once, or after the writes in flight (its WAL marker follows them).
    mutating func compact(to newSnapshot: Snapshot) {
        if inFlight.isEmpty {
            compactNow(to: newSnapshot)
        } else {
            compactionsInFlight.append((inFlight.count, newSnapshot))
        }
    }

    private mutating func compactNow(to newSnapshot: Snapshot) {
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
