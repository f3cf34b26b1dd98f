import Synchronization

/// Runs a `RaftCore` for real: ticks from a clock, messages through a `RaftTransport`, durable
/// state in a `DurableLogStorage`, committed entries applied to the application's state machine.
///
/// Everything the core asks for is done in the order `Ready` prescribes: persist (one WAL batch
/// per Ready, so concurrent proposals share an fdatasync), then send (DESIGN.md §1: persist
/// before send), then apply, then advance; committed entries already durable here are applied
/// while the Ready's own write is syncing. That takes one loop (`runReadyLoop`), which waits for
/// the disk. A leader of an unchanged term does not wait for its sync at all: its messages
/// promise nothing about its disk, and the core counts its entries toward a majority only once
/// the WAL confirms them (`RaftCore.advance(_:durable:)`), so its Readies are handled in the
/// same turn of the actor as the step that made them (`scheduleReadyLoop`) while no loop runs.
/// Inputs (ticks, messages, proposals, reads) may arrive while the loop waits for the disk; the
/// core queues their effects into the next Ready.
///
/// The node is a default actor, on the shared pool, on purpose. Run on the event loop of its
/// cluster connections (a custom executor), it would step and send without a thread handoff,
/// but it measured slower (kv-bench, stop 34, each against the default actor in the same
/// conditions): on a loop of its own, linearizable reads 3,574 per second against 13,220 and
/// writes at 64 clients 5,988 against 7,263 (16 clients: 3,346 against 3,353); on a loop of
/// the shared group, writes at 64 clients 4,154 against 4,978. The likely reason: every `await`
/// of a request handler on the node (propose, `read`, `withStateMachine`) becomes a wakeup of
/// that loop and another back, where a pool thread finding the actor free runs it in place.
public actor RaftNode<Machine: RaftStateMachine>: RaftMessageReceiver {
    /// How the node runs.
    public struct Options: Sendable {
        /// The core's configuration; `raft.id` names this node.
        public var raft: RaftConfig
        /// Real time per core tick.
        public var tickInterval: Duration
        /// Take an application snapshot and compact the log after this many applied entries,
        /// or this many bytes of them, whichever comes first. Both bound what a follower can
        /// need from the log: one further behind gets the snapshot instead of an endless run
        /// of entries, and the leader's log in memory stays bounded by bytes, not only count.
        public var snapshotEveryAppliedEntries: UInt64
        public var snapshotEveryAppliedBytes: Int
        /// Fail a read barrier that has not been confirmed after this many ticks.
        public var readTimeoutTicks: Int
        /// How long a proposal given no deadline of its own waits to be applied.
        public var proposalTimeout: Duration

        /// Options for node `raft.id`; reads time out after two election timeouts by default.
        public init(raft: RaftConfig, tickInterval: Duration = .milliseconds(100),
                    snapshotEveryAppliedEntries: UInt64 = 10_000, snapshotEveryAppliedBytes: Int = 64 << 20,
                    readTimeoutTicks: Int? = nil,
                    proposalTimeout: Duration = .seconds(30)) {
            self.raft = raft
            self.tickInterval = tickInterval
            self.snapshotEveryAppliedEntries = snapshotEveryAppliedEntries
            self.snapshotEveryAppliedBytes = snapshotEveryAppliedBytes
            self.readTimeoutTicks = readTimeoutTicks ?? 2 * raft.electionTimeoutTicks
            self.proposalTimeout = proposalTimeout
        }
    }

    struct ProposalWaiter {
        var term: UInt64
        var deadline: ContinuousClock.Instant
        /// Read from the state machine as soon as the entry is applied, in the same turn of the
        /// actor: the proposer gets its entry's result without queueing for the actor again.
        var reading: (@Sendable (Machine, UInt64) -> any Sendable)?
        /// Called once, on the actor, with the outcome: resumes `propose`'s caller, or is the
        /// completion a `submit` was given.
        var finish: @Sendable (Result<AppliedProposal, any Error>) -> Void
    }

    /// A proposal's entry, applied: its index, and what the proposer asked to read then.
    struct AppliedProposal: Sendable {
        var index: UInt64
        var read: (any Sendable)?

        /// The index and the read as the proposer's `reading` typed it.
        func typed<Read>() -> (index: UInt64, read: Read) {
            guard let read = read as? Read else { preconditionFailure("proposal \(index) read the wrong type") }
            return (index, read)
        }
    }

    struct ReadWaiter {
        var issuedAtTick: Int
        /// Set once the leader has confirmed the read: the index to apply up to.
        var index: UInt64?
        var continuation: CheckedContinuation<Void, any Error>
    }

    /// This node's id.
    public nonisolated let id: NodeID
    /// ``leader`` as of the core's last step, readable without waiting for the actor: for
    /// answers that may be a moment stale but must not wait behind a long apply (heartbeats).
    private nonisolated let publishedLeader = Atomic<NodeID>(0)
    /// Voters and learners as of the core's last configuration change, for the transport's
    /// side (see ``lastKnownMembers``): published only when the configuration's index moves,
    /// so that neither a step nor a received batch builds a set.
    private nonisolated let publishedMembers = Mutex<Set<NodeID>>([])
    private var publishedMembershipIndex: UInt64?
    let options: Options
    var core: RaftCore
    let storage: DurableLogStorage
    var machine: Machine
    let transport: any RaftTransport
    var appliedIndex: UInt64
    /// Bytes of entries applied since the last snapshot (`Options.snapshotEveryAppliedBytes`).
    var appliedBytesSinceSnapshot = 0
    var proposals: [UInt64: ProposalWaiter] = [:]
    /// Proposals handed in by ``submit(_:deadline:reading:completion:)``, waiting for the actor.
    nonisolated let submissions = Mutex(SubmissionQueue())
    var reads: [UInt64: ReadWaiter] = [:]
    var nextReadID: UInt64 = 1
    var elapsedTicks = 0
    var readyLoopRunning = false
    /// The Ready loop's latest run (finished or not): `stop` waits for it.
    var readyLoop: Task<Void, Never>?
    /// The application snapshot being written and recorded, beside the Ready loop (see
    /// `compactIfDue`); nil when none is.
    var compaction: Task<Void, Never>?
    /// Leader writes advanced before the WAL confirmed them (`handleWithoutWaiting`), oldest
    /// first: a handful at most (each a Ready's batch), since every step and tick reports those
    /// the WAL has synced.
    var unconfirmedLeaderWrites: [(ticket: WriteAheadLog.Ticket, last: LogPosition)] = []
    /// Waits for `unconfirmedLeaderWrites` to become durable while the commit waits for them;
    /// nil when nothing does.
    var durabilityWatch: Task<Void, Never>?
    /// When a message of the current leader in its term last arrived: how stale a follower's
    /// copy may be (Consul's LastContact).
    private var lastLeaderContact: ContinuousClock.Instant?
    /// Whether the core led at the last ``publishLeader()``.
    private var wasLeader = false
    /// Set once stopped or failed; every request fails with it from then on.
    var terminalError: RaftNodeError?
    private let inbox: AsyncStream<[Message]>
    private let inboxInput: AsyncStream<[Message]>.Continuation
    private var tasks: [Task<Void, Never>] = []
    /// Set by `terminate`: ends once the storage is closed.
    private var storageClosed: Task<Void, Never>?

    /// A node over `storage` (already opened, holding the bootstrap membership for a new
    /// group). The state machine starts from the storage's snapshot, and the committed entries
    /// after it are applied again as the core hands them out: the machine itself is not durable.
    public init(options: Options, storage: DurableLogStorage, machine: Machine, transport: any RaftTransport) throws {
        id = options.raft.id
        self.options = options
        self.storage = storage
        self.transport = transport
        var machine = machine
        let snapshot = try storage.snapshot()
        if snapshot.metadata.index > 0 { try machine.restore(from: snapshot.data) }
        self.machine = machine
        appliedIndex = snapshot.metadata.index
        core = RaftCore(config: options.raft, storage: storage, random: SystemRandomNumberGenerator(),
                        appliedIndex: snapshot.metadata.index)
        (inbox, inboxInput) = AsyncStream.makeStream(of: [Message].self)
    }

    /// Starts the clock and the inbox. Register the node with its transport before this.
    public func start() {
        guard tasks.isEmpty, terminalError == nil else { return }
        let interval = options.tickInterval
        tasks.append(Task {
            while !Task.isCancelled {
                do { try await Task.sleep(for: interval) } catch { return }
                self.tick()
            }
        })
        let inbox = self.inbox
        tasks.append(Task {
            for await messages in inbox {
                self.step(messages)
            }
        })
    }

    /// Stops the node: no more ticks or messages, every waiting request fails with `.stopped`,
    /// and the storage is closed after writing what is queued. Like a crash, except that what
    /// was submitted to the WAL still reaches the disk.
    ///
    /// Returns once nothing the node runs writes into its directory any more: a snapshot being
    /// written beside the loop (its own or the leader's) is finished first. Closing the storage
    /// releases the directory's lock, and a node opened on it next must not find a file still
    /// being written there.
    public func stop() async {
        if terminalError == nil { terminate(.stopped) }
        await storageClosed?.value
    }

    /// Takes messages from the transport; they are stepped in arrival order.
    public nonisolated func receive(_ messages: [Message]) {
        inboxInput.yield(messages)
    }

    func tick() {
        guard terminalError == nil else { return }
        elapsedTicks += 1
        // With no follower answering (no steps), the leader's syncs are still counted.
        reportDurableLeaderWrites()
        guard terminalError == nil else { return }
        core.tick()
        expireReads()
        expireProposals()
        scheduleReadyLoop()
    }

    func step(_ messages: [Message]) {
        guard terminalError == nil else { return }
        // A follower's acknowledgement may complete a majority with the leader's own entries:
        // count them if the WAL has synced them since, without waiting for the watch's hop.
        reportDurableLeaderWrites()
        guard terminalError == nil else { return }
        for message in messages {
            // A misaddressed or malformed message is the sender's problem; the core has
            // already refused it, and nothing here can do better than drop it.
            try? core.step(message)
        }
        if core.leader != 0, messages.contains(where: { $0.from == core.leader && $0.term == core.term }) {
            lastLeaderContact = .now
        }
        scheduleReadyLoop()
    }

    /// Proposes `data` and returns its index once it is committed and applied to this node's
    /// state machine. On a follower it fails at once with `.notLeader(leaderHint:)`; past
    /// `deadline` (default: `Options.proposalTimeout` from now) with `.proposalTimedOut`, so
    /// that no proposer waits without end on a stalled disk or quorum.
    public func propose(_ data: [UInt8], deadline: ContinuousClock.Instant? = nil) async throws -> UInt64 {
        try await applied(appended(data), deadline: deadline, reading: nil).index
    }

    /// Proposes `data`, as ``propose(_:deadline:)``, and reads `reading` from the state machine
    /// the moment the entry is applied (say, the entry's result): no second wait for the actor.
    public func propose<Read: Sendable>(
        _ data: [UInt8], deadline: ContinuousClock.Instant? = nil,
        reading: @escaping @Sendable (Machine, _ index: UInt64) -> Read
    ) async throws -> (index: UInt64, read: Read) {
        try await applied(appended(data), deadline: deadline, reading: reading).typed()
    }

    /// Appends `data` to the leader's log; where it went.
    func appended(_ data: [UInt8]) throws -> LogPosition {
        if let terminalError { throw terminalError }
        do {
            return try core.propose(data)
        } catch .notLeader(let hint) {
            throw RaftNodeError.notLeader(leaderHint: hint)
        } catch {
            throw RaftNodeError.rejected(error)
        }
    }

    /// Proposes a membership change of one server (`RaftCore.proposeConfChange`) and returns
    /// its index once it is committed and applied here. It is in force on each node from the
    /// moment it reaches that node's log. `deadline` as for `propose`.
    public func proposeConfChange(_ change: ConfChange, deadline: ContinuousClock.Instant? = nil) async throws -> UInt64 {
        if let terminalError { throw terminalError }
        let position: LogPosition
        do {
            position = try core.proposeConfChange(change)
        } catch .notLeader(let hint) {
            throw RaftNodeError.notLeader(leaderHint: hint)
        } catch {
            throw RaftNodeError.rejected(error)
        }
        return try await applied(position, deadline: deadline, reading: nil).index
    }

    /// Waits until the entry proposed at `position` is applied, is known lost, or its deadline
    /// passes.
    private func applied(
        _ position: LogPosition, deadline: ContinuousClock.Instant?, reading: (@Sendable (Machine, UInt64) -> any Sendable)?
    ) async throws -> AppliedProposal {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                awaitApplied(position, deadline: deadline, reading: reading) { continuation.resume(with: $0) }
                scheduleReadyLoop()
            }
        } onCancel: {
            Task { await self.cancelProposal(at: position.index) }
        }
    }

    /// Calls `finish` once the entry proposed at `position` is applied, is known lost, or its
    /// deadline (default: `Options.proposalTimeout` from now) passes.
    func awaitApplied(
        _ position: LogPosition, deadline: ContinuousClock.Instant?, reading: (@Sendable (Machine, UInt64) -> any Sendable)?,
        finish: @escaping @Sendable (Result<AppliedProposal, any Error>) -> Void
    ) {
        proposals[position.index] = ProposalWaiter(
            term: position.term, deadline: deadline ?? .now + options.proposalTimeout, reading: reading, finish: finish)
    }

    private func cancelProposal(at index: UInt64) {
        proposals.removeValue(forKey: index)?.finish(.failure(CancellationError()))
    }

    /// A linearizable read barrier (ReadIndex, thesis §6.4): returns once this node's state
    /// machine reflects every write committed before the call, so reading it next (with
    /// `withStateMachine`) is linearizable. Works on followers through the leader.
    public func read() async throws {
        if let terminalError { throw terminalError }
        let readID = nextReadID
        nextReadID += 1
        var context = LittleEndianWriter(reservingCapacity: 16)
        context.append(id)
        context.append(readID)
        do {
            try core.readIndex(context: context.bytes)
        } catch .notLeader(let hint) {
            throw RaftNodeError.notLeader(leaderHint: hint)
        } catch {
            throw RaftNodeError.rejected(error)
        }
        try await withCheckedThrowingContinuation { continuation in
            reads[readID] = ReadWaiter(issuedAtTick: elapsedTicks, index: nil, continuation: continuation)
            scheduleReadyLoop()
        }
    }

    /// Runs `body` on the state machine, inside the node: after `read()`, a linearizable read.
    public func withStateMachine<Result: Sendable>(_ body: (Machine) throws -> Result) rethrows -> Result {
        try body(machine)
    }

    /// The core's view: role, leader, indexes, progress of peers.
    public var status: RaftStatus { core.status }

    /// How long ago this node last heard from the leader of its term: zero on the leader
    /// itself, nil while no leader is known. What a read served from the local copy
    /// without a barrier reports as its age.
    public var leaderContactAge: Duration? {
        if core.leader == id { return .zero }
        guard core.leader != 0, let lastLeaderContact else { return nil }
        return .now - lastLeaderContact
    }

    /// The leader this node knows of, or zero.
    public var leader: NodeID { core.leader }

    /// The leader as this node last knew it, without a hop onto the actor (which may be
    /// applying a large entry): up to one step of the core stale.
    public nonisolated var lastKnownLeader: NodeID { publishedLeader.load(ordering: .relaxed) }

    /// Voters and learners as this node last knew them, without a hop onto the actor: whom a
    /// transport may take Raft messages from. Empty until the node holds a configuration (a
    /// server that has just joined learns it from the leader's messages).
    public nonisolated var lastKnownMembers: Set<NodeID> {
        publishedMembers.withLock { $0 }
    }

    /// Called after every step of the core (``scheduleReadyLoop()`` follows each). A node that
    /// has just stopped leading fails the proposals it still holds: whether they commit is up
    /// to the next leader, and a leader cut off with a minority would otherwise keep its
    /// proposers waiting until the partition heals (etcd answers "leader changed" so).
    func publishLeader() {
        publishedLeader.store(core.leader, ordering: .relaxed)
        if core.membership.currentIndex != publishedMembershipIndex {
            publishedMembershipIndex = core.membership.currentIndex
            let configuration = core.membership.current
            publishedMembers.withLock { $0 = configuration.voters.union(configuration.learners) }
        }
        let leads = core.isLeader
        defer { wasLeader = leads }
        guard wasLeader, !leads, !proposals.isEmpty else { return }
        for (index, waiter) in proposals {
            waiter.finish(.failure(RaftNodeError.leadershipLost(index: index)))
        }
        proposals = [:]
    }

    /// The index of the last entry applied to the state machine.
    public var applied: UInt64 { appliedIndex }

    /// Starts an election now instead of waiting for the timeout.
    public func campaign() {
        guard terminalError == nil else { return }
        core.campaign()
        scheduleReadyLoop()
    }

    /// Hands leadership to `target` once it has caught up (thesis §3.10).
    public func transferLeadership(to target: NodeID) throws {
        if let terminalError { throw terminalError }
        do {
            try core.transferLeadership(to: target)
        } catch {
            throw RaftNodeError.rejected(error)
        }
        scheduleReadyLoop()
    }

    /// Stops everything and fails every waiter with `error`.
    func terminate(_ error: RaftNodeError) {
        terminalError = error
        publishedLeader.store(0, ordering: .relaxed)
        for task in tasks { task.cancel() }
        tasks = []
        inboxInput.finish()
        for waiter in proposals.values { waiter.finish(.failure(error)) }
        proposals = [:]
        for waiter in reads.values { waiter.continuation.resume(throwing: error) }
        reads = [:]
        storageClosed = Task { await self.closeStorageOnceQuiet() }
    }

    /// Closes the storage once neither the Ready loop nor a compaction can write into it: both
    /// may be in the middle of a snapshot's file, on a thread of their own (`BlockingWork`).
    /// After `terminate` the loop starts no compaction, and no loop starts.
    private func closeStorageOnceQuiet() async {
        await readyLoop?.value
        await compaction?.value
        await durabilityWatch?.value
        storage.close()
    }
}
