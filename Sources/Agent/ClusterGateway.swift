import AgentAPI
import Cluster
import Controller
import Metrics
import Raft
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// How the agent reads and changes the replicated state: commands go through the Raft log
/// (``submit(_:)`` returns once applied here, with what applying did); reads are served from
/// the local replica, optionally behind a linearizable read barrier.
public final class ClusterGateway: Sendable {
    public let node: RaftNode<ControllerMachine>
    public let feed: ChangeFeed
    /// Changes of the key-value store, which `feed` does not carry.
    public let kvFeed: ChangeFeed
    /// How a follower's writes reach the leader; nil on a single node.
    let forwarder: (any WriteForwarder)?
    /// When the leader last heard from each node: heartbeats land here, not in the log
    /// (see ``heartbeat(node:)``). Meaningful while this agent leads.
    let liveness: Mutex<NodeLiveness>
    /// The members and nodes as last applied (the machine's ``MembershipDirectory``).
    let directory: MembershipDirectory

    public init(
        node: RaftNode<ControllerMachine>, feed: ChangeFeed, kvFeed: ChangeFeed = ChangeFeed(), directory: MembershipDirectory,
        forwarder: (any WriteForwarder)? = nil,
        nodeDownTimeout: Duration = .seconds(15)
    ) {
        self.node = node
        self.feed = feed
        self.kvFeed = kvFeed
        self.directory = directory
        self.forwarder = forwarder
        liveness = Mutex(NodeLiveness(ttl: nodeDownTimeout))
    }

    /// The wall clock, stamped on entries by their proposer (replicas never read a clock
    /// while applying, see ``ControllerEntry``).
    public static func now() -> Timestamp {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Timestamp(unixMilliseconds: Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000)
    }

    /// Proposes `command` and returns what applying it did, and its log index.
    public func submit(_ command: ControllerCommand) async throws(APIError) -> (result: CommandResult, index: UInt64) {
        try await submit(ControllerEntry(command: command, time: Self.now()))
    }

    /// Proposes an entry as its proposer stamped it (a client's, passed on by this server).
    func submit(_ entry: ControllerEntry) async throws(APIError) -> (result: CommandResult, index: UInt64) {
        let start = ContinuousClock.now
        let (index, read) = try await propose(entry.encoded())
        Self.proposalDuration.record(duration: ContinuousClock.now - start)
        return try Self.outcome(index: index, read: read)
    }

    /// ``submit(_:)`` for a caller on an event loop, without a task of its own, while this
    /// server leads (`RaftNode.submit`): `done` is called once, on the Raft node's actor, with
    /// what `submit` would return or throw. Where this server does not lead, or learns so as
    /// the entry is proposed (nothing was appended then), `otherwise` is called instead, at once
    /// or on the actor: the caller takes `submit`'s way, which forwards to the leader.
    /// `startBatch`: see `RaftNode.submit`.
    func submitWhileLeading(
        _ command: ControllerCommand, startBatch: (@escaping @Sendable () -> Void) -> Void,
        otherwise: @escaping @Sendable () -> Void,
        done: @escaping @Sendable (Result<(result: CommandResult, index: UInt64), APIError>) -> Void
    ) {
        guard node.lastKnownLeader == node.id else { return otherwise() }
        let start = ContinuousClock.now
        node.submit(ControllerEntry(command: command, time: Self.now()).encoded(), reading: { machine, index in machine.result(at: index) }, startBatch: startBatch) { outcome in
            switch outcome {
            case .success(let (index, read)):
                Self.proposalDuration.record(duration: ContinuousClock.now - start)
                done(Result { () throws(APIError) in try Self.outcome(index: index, read: read) })
            case .failure(RaftNodeError.notLeader):
                otherwise()
            case .failure(let error):
                done(.failure(Self.apiError(error)))
            }
        }
    }

    private static func outcome(index: UInt64, read: CommandResult?) throws(APIError) -> (result: CommandResult, index: UInt64) {
        guard let result = read else {
            throw APIError(code: APIErrorCode.internalError, message: "entry \(index) was applied but its result is no longer known; check `deployctl events`")
        }
        return (result, index)
    }

    /// `flotilla_raft_proposal_duration_seconds`: from a proposal here to its entry applied.
    private static var proposalDuration: Metrics.Timer { Metrics.Timer(label: "flotilla_raft_proposal_duration_seconds") }

    /// Proposes here or through the leader. While no leader is known (an election, or this
    /// server just started and has not heard from it), the request is held up to
    /// `leaderWait` for one to appear, as Consul holds RPCs (`rpc_hold_timeout`), rather than
    /// failing at once.
    /// Returns the entry's index and its result: proposed here, the result is read as the entry
    /// applies; passed to the leader, once this replica has applied it (as the leader answers).
    private func propose(_ entry: [UInt8]) async throws(APIError) -> (index: UInt64, read: CommandResult?) {
        let deadline = ContinuousClock.now + Self.leaderWait
        while true {
            do {
                return try await node.propose(entry) { machine, index in machine.result(at: index) }
            } catch RaftNodeError.notLeader(let leader) where leader != 0 && forwarder != nil {
                do {
                    let index = try await forwardOnce(.propose(entry), to: leader)
                    return (index, await node.withStateMachine { $0.result(at: index) })
                } catch is UnsentForward where ContinuousClock.now < deadline {
                    // Never sent (no connection to the leader this replica knows: it may have
                    // just died): safe to try again, once this replica hears of a new one.
                    try await Self.pause(.milliseconds(10), cancelled: Self.cancelledWithoutLeader)
                } catch let unsent as UnsentForward {
                    throw unsent.error
                } catch {
                    throw Self.apiError(error)
                }
            } catch RaftNodeError.notLeader(0) where ContinuousClock.now < deadline {
                try await Self.pause(.milliseconds(10), cancelled: Self.cancelledWithoutLeader)
            } catch {
                throw Self.apiError(error)
            }
        }
    }

    /// How long a write waits for a leader to be known.
    static let leaderWait = Duration.seconds(7)

    /// The pause between two looks of a loop that waits up to a deadline. A cancelled task
    /// (its client gone, or the agent's stop cutting what is left) ends the loop with
    /// `cancelled`: its sleep returns at once, and going round until the deadline took a core.
    static func pause(_ pause: Duration, cancelled: @autoclosure () -> APIError) async throws(APIError) {
        do {
            try await Task.sleep(for: pause)
        } catch {
            throw cancelled()
        }
    }

    static var cancelledWithoutLeader: APIError {
        APIError(code: APIErrorCode.noLeader, message: "cancelled while waiting for a leader; nothing was proposed")
    }

    /// Proposes through the leader and waits until this replica has applied the entry, so
    /// that its result is here (every replica computes the same one).
    func forward(_ request: LeaderRequest, to leader: NodeID) async throws(APIError) -> UInt64 {
        do {
            return try await forwardOnce(request, to: leader)
        } catch let unsent as UnsentForward {
            throw unsent.error
        } catch {
            throw Self.apiError(error)
        }
    }

    /// ``forward(_:to:)``, throwing ``UnsentForward`` when the request never left.
    func forwardOnce(_ request: LeaderRequest, to leader: NodeID) async throws -> UInt64 {
        guard let forwarder else { throw Self.apiError(RaftNodeError.notLeader(leaderHint: leader)) }
        let index: UInt64
        do {
            index = try await forwarder.forward(request.encoded, to: leader)
        } catch CallError.noConnection(let peer) {
            throw UnsentForward(error: APIError(code: APIErrorCode.noLeader, message: "forwarding to the leader (node \(leader)): \(CallError.noConnection(peer))"))
        } catch let refusal as NotLeaderRefusal {
            throw UnsentForward(error: APIError(code: APIErrorCode.noLeader, message: "forwarding to the leader: \(refusal); retry in a moment"))
        } catch let error as CallError {
            throw APIError(code: APIErrorCode.noLeader, message: "forwarding to the leader (node \(leader)): \(error)")
        } catch {
            throw Self.apiError(error)
        }
        let deadline = ContinuousClock.now + .seconds(30)
        while await node.applied < index {
            guard ContinuousClock.now < deadline else {
                throw APIError(
                    code: APIErrorCode.timeout,
                    message: "the leader committed the change at index \(index), but this agent has not applied it within 30s; check `deployctl events`")
            }
            try await Self.pause(.milliseconds(2), cancelled: APIError(
                code: APIErrorCode.timeout,
                message: "cancelled before this agent applied the change the leader committed at index \(index); check `deployctl events`"))
        }
        return index
    }

    /// What `command` would do, applied to a copy of the current state; nothing is proposed.
    public func preview(_ command: ControllerCommand) async -> CommandResult {
        let now = Self.now()
        return await node.withStateMachine { machine in
            var copy = machine.state
            return copy.apply(command, at: copy.lastChangeIndex + 1, time: now)
        }
    }

    /// Runs `body` on the local replica. With `consistent`, first waits until the replica has
    /// every write committed before the call (Raft ReadIndex), so the read is linearizable.
    public func read<Result: Sendable>(consistent: Bool = false, _ body: @Sendable (ClusterState) -> Result) async throws(APIError) -> Result {
        if consistent { try await readBarrier() }
        return await node.withStateMachine { body($0.state) }
    }

    /// Waits until the local replica has every write committed before the call (ReadIndex).
    private func readBarrier() async throws(APIError) {
        do {
            try await node.read()
        } catch {
            throw Self.apiError(error)
        }
    }

    /// The local replica's state as it is now: a copy (its collections are shared until either
    /// side changes them, so taking it costs no copying), for work too long to do on the Raft
    /// node's actor: planning or per-client assignments there would hold up its ticks and
    /// heartbeats, and a leader busy past the election timeout loses its leadership.
    public func snapshot() async -> ClusterState {
        await node.withStateMachine { $0.state }
    }

    /// Like ``read(consistent:_:)``, with the node's view of the Raft group taken in the same
    /// visit to the node: one hop onto its actor instead of two, and a status that belongs to
    /// the state read.
    public func readWithRaftStatus<Result: Sendable>(
        consistent: Bool = false, _ body: @Sendable (ClusterState, RaftStatus) -> Result
    ) async throws(APIError) -> Result {
        if consistent { try await readBarrier() }
        return await Self.onNode(node, body)
    }

    private static func onNode<Result: Sendable>(
        _ node: isolated RaftNode<ControllerMachine>, _ body: @Sendable (ClusterState, RaftStatus) -> Result
    ) -> Result {
        let status = node.status
        return node.withStateMachine { body($0.state, status) }
    }

    /// A read of the key-value store: behind a ReadIndex barrier when `consistent`, with the
    /// change index `changeIndex` finds for what is read (what a blocking read waits past), the
    /// store's last change (what it waits past on `kvFeed`) and how long ago this node heard
    /// from the leader (nil: no leader known), taken in the same visit to the node. `body`
    /// runs only when the change index is past `after`: a blocking read woken by a change
    /// elsewhere in the store costs the node a lookup, not a listing.
    func readKV<Result: Sendable>(
        consistent: Bool, after: UInt64?, changeIndex: @Sendable (KVStore) -> UInt64, _ body: @Sendable (KVStore) -> Result
    ) async throws(APIError) -> KVStoreRead<Result> {
        if consistent { try await readBarrier() }
        return await Self.readKV(on: node, after: after, changeIndex: changeIndex, body)
    }

    private static func readKV<Result: Sendable>(
        on node: isolated RaftNode<ControllerMachine>, after: UInt64?, changeIndex: @Sendable (KVStore) -> UInt64,
        _ body: @Sendable (KVStore) -> Result
    ) -> KVStoreRead<Result> {
        let contact = node.leaderContactAge
        return node.withStateMachine { machine in
            let store = machine.state.kv
            let index = max(changeIndex(store), 1)
            // Unchanged since `after`: the caller waits again, so the body is not run.
            let unchanged = after.map { index <= $0 } ?? false
            let result = unchanged ? nil : body(store)
            return KVStoreRead(result: result, changeIndex: index, stateIndex: store.lastChangeIndex, leaderContact: contact)
        }
    }

    /// The node's view of the Raft group.
    public func raftStatus() async -> (leader: NodeID, term: UInt64, commit: UInt64, applied: UInt64) {
        let status = await node.status
        return (status.softState.leader, status.hardState.term, status.hardState.commit, status.applied)
    }

    static func apiError(_ error: any Error) -> APIError {
        // Already the API's (a forward that failed says so in its own words): as it is, not
        // wrapped into an internal error.
        if let error = error as? APIError { return error }
        if let error = error as? RaftNodeError {
            switch error {
            case .notLeader(let hint):
                return APIError(
                    code: APIErrorCode.noLeader,
                    message: hint == 0 ? "the cluster has no leader right now; retry in a moment" : "this agent is not the leader (node \(hint) is); send the request to the leader")
            case .leadershipLost(let index):
                return APIError(
                    code: APIErrorCode.timeout,
                    message: "the leader lost its leadership before this change (log index \(index)) committed; the next leader may or may not commit it: check `deployctl events` before retrying")
            case .proposalTimedOut(let index):
                return APIError(
                    code: APIErrorCode.timeout,
                    message: "this change (log index \(index)) was not committed in time (a slow disk or quorum); it may still take effect: check `deployctl events` before retrying")
            case .proposalDropped(let index):
                return APIError(
                    code: APIErrorCode.noLeader,
                    message: "a new leader replaced this change (log index \(index)) with its own entry before it committed; it did not take effect: retry")
            case .proposalOutcomeUnknown(let index):
                return APIError(
                    code: APIErrorCode.timeout,
                    message: "this agent caught up from a snapshot that covers this change (log index \(index)); it may or may not have taken effect: check `deployctl events` before retrying")
            case .readTimedOut:
                return APIError(
                    code: APIErrorCode.timeout,
                    message: "no leader confirmed this read in time (the cluster may have no leader right now); retry in a moment")
            case .rejected(.tooManyUncommitted(let bytes, let limit)):
                return APIError(
                    code: APIErrorCode.overloaded,
                    message: "the leader holds \(bytes) bytes of changes not yet committed (limit \(limit)): its followers are not keeping up; retry in a moment")
            default:
                return APIError(code: APIErrorCode.internalError, message: "the Raft node failed: \(error)")
            }
        }
        if error is CancellationError {
            return APIError(code: APIErrorCode.timeout, message: "the request was cancelled before it was committed; it may still take effect — check `deployctl events`")
        }
        return APIError(code: APIErrorCode.internalError, message: "\(error)")
    }
}

/// A forwarded request that cannot have acted: it never left this agent (no connection to the
/// leader), or the member it went to answered that it does not lead. Unlike one whose
/// connection broke on the way, it may be sent again.
struct UnsentForward: Error {
    let error: APIError
}

/// What ``ClusterGateway/readKV(consistent:after:changeIndex:_:)`` read.
struct KVStoreRead<Result: Sendable>: Sendable {
    /// nil when the change index had not passed the one waited past.
    var result: Result?
    /// The change index of what was read, at least 1.
    var changeIndex: UInt64
    /// The store's last change.
    var stateIndex: UInt64
    var leaderContact: Duration?
}
