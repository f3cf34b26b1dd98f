import Raft

/// One simulated server: its disk, and while it is up, its core, the in-memory view of its
/// log and the state machine, plus the client requests it is serving. A class, so the
/// simulation changes it in place instead of copying a whole core on every access.
final class SimNode {
    let id: NodeID
    var disk: SimDisk
    var config: RaftConfig
    var core: RaftCore?
    var storage: MemoryStorage?
    var store = KVStore()
    /// Bumped on every restart, so events for an earlier life are ignored.
    var incarnation = 0
    /// Until when the node is paused (a process stopped, as by SIGSTOP or a long GC pause):
    /// it neither ticks nor reads messages or requests, and does not notice time passing.
    var pausedUntil: UInt64 = 0
    /// Removed from the group and told so: stopped for good.
    var decommissioned = false
    /// Compact once this many entries have been applied since the last snapshot.
    var compactionThreshold: UInt64
    /// Confirmed reads waiting until the state machine reaches their index.
    var pendingReads: [ReadState] = []
    /// Writes proposed here on behalf of a client, by operation id.
    var waitingWrites: [UInt64: Int] = [:]
    struct WaitingRead {
        let client: Int
        let key: String
    }

    /// Reads asked here on behalf of a client, by operation id.
    var waitingReads: [UInt64: WaitingRead] = [:]
    var lastRole: RaftRole = .follower
    /// The commit index and term last reported to the safety checker.
    var lastObservedCommit = SafetyChecker.Position(index: 0, term: 0)
    /// The simulated time between this node's ticks.
    let tickUnits: UInt64
    /// How long its disk takes to sync one write (simulated time, drawn per write).
    let syncLatency: ClosedRange<Int>

    /// Whether the node runs; kept apart from `core` so that asking does not copy the core.
    private(set) var isUp = false

    init(id: NodeID, conf: ConfState, config: RaftConfig, compactionThreshold: UInt64, tickUnits: UInt64,
         syncLatency: ClosedRange<Int>) {
        self.id = id
        self.tickUnits = tickUnits
        self.syncLatency = syncLatency
        self.disk = SimDisk(bootstrap: conf)
        self.config = config
        self.compactionThreshold = compactionThreshold
    }

    /// Starts from what the disk holds; the state machine from the snapshot, the rest is
    /// replayed by the core as committed entries.
    func start(seed: UInt64) {
        let storage = disk.recover()
        self.storage = storage
        store = KVStore(snapshotData: disk.snapshot.data)
        core = RaftCore(config: config, storage: storage, random: SplitMix64(seed: seed))
        isUp = true
        incarnation += 1
        pendingReads = []
        waitingWrites = [:]
        waitingReads = [:]
        lastRole = .follower
    }

    func stop() {
        core = nil
        isUp = false
        storage = nil
        pendingReads = []
        waitingWrites = [:]
        waitingReads = [:]
    }
}
