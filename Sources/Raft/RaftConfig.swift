/// How a `RaftCore` behaves. Time is counted in ticks of the driver's clock.
public struct RaftConfig: Sendable, Hashable {
    /// This node's id; never zero.
    public var id: NodeID
    /// The shortest election timeout. Each follower draws its timeout anew from
    /// `electionTimeoutTicks ..< 2 * electionTimeoutTicks` so that split votes are rare
    /// (paper §5.2); a leader checks its quorum once per this period (thesis §6.2).
    public var electionTimeoutTicks: Int
    /// How often a leader sends heartbeats; much shorter than the election timeout (paper §5.6).
    public var heartbeatIntervalTicks: Int
    /// The most entry bytes in one append message (batching: one message carries many entries).
    public var maxAppendBytes: Int
    /// The most append messages in flight to one follower while pipelining.
    public var maxInflightAppends: Int
    /// The most entry bytes handed to the application to apply in one `Ready`.
    public var maxApplyBytesPerReady: Int
    /// The size of the pieces a snapshot is sent in.
    public var snapshotChunkBytes: Int
    /// The most proposal bytes a leader holds appended but not committed; further proposals are
    /// refused (`RaftError.tooManyUncommitted`) until commits catch up, so that a leader whose
    /// followers cannot keep up, or that has lost its majority, does not grow its log (and
    /// memory) without bound (etcd's MaxUncommittedEntriesSize). A proposal is accepted
    /// whatever its size when nothing is uncommitted. 0: no limit.
    public var maxUncommittedBytes: Int

    /// A configuration with defaults that suit a LAN with a 100 ms tick: elections after 1 to
    /// 2 seconds, heartbeats every tick.
    public init(id: NodeID,
                electionTimeoutTicks: Int = 10,
                heartbeatIntervalTicks: Int = 1,
                maxAppendBytes: Int = 1 << 20,
                maxInflightAppends: Int = 256,
                maxApplyBytesPerReady: Int = 64 << 20,
                snapshotChunkBytes: Int = 1 << 20,
                maxUncommittedBytes: Int = 64 << 20) {
        self.id = id
        self.electionTimeoutTicks = electionTimeoutTicks
        self.heartbeatIntervalTicks = heartbeatIntervalTicks
        self.maxAppendBytes = maxAppendBytes
        self.maxInflightAppends = maxInflightAppends
        self.maxApplyBytesPerReady = maxApplyBytesPerReady
        self.snapshotChunkBytes = snapshotChunkBytes
        self.maxUncommittedBytes = maxUncommittedBytes
    }

    func validate() {
        precondition(id != 0, "node id 0 is reserved for none")
        precondition(heartbeatIntervalTicks > 0, "heartbeat interval must be positive")
        precondition(electionTimeoutTicks > heartbeatIntervalTicks,
                     "election timeout must be longer than the heartbeat interval")
        precondition(maxAppendBytes > 0 && maxInflightAppends > 0 && maxApplyBytesPerReady > 0
                     && snapshotChunkBytes > 0, "limits must be positive")
        precondition(maxUncommittedBytes >= 0, "the uncommitted limit must be positive, or 0 for none")
    }
}
