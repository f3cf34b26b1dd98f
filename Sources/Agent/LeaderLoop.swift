import Controller
import Logging

/// The leader's work (DESIGN.md: "The leader runs the scheduler and the rollout engine"):
/// after every change, and at least every `interval`, it reconciles desired and actual state
/// into a plan and commits it, one plan at a time (Nomad's model); and it commits the node
/// liveness changes its memory of heartbeats shows (``ClusterGateway/liveness``). Followers run the same loop but do nothing while not leader.
public struct LeaderLoop: Sendable {
    let gateway: ClusterGateway
    let interval: Duration
    let logger: Logger

    public init(gateway: ClusterGateway, interval: Duration = .seconds(1), logger: Logger) {
        self.gateway = gateway
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        var seen: UInt64 = 0
        var lastPlan: Plan?
        var ledTerm: UInt64?
        // The state index at which the last pass found nothing to do, and when the same state
        // would next call for something (a grace or a drain deadline ending): until either
        // moves, a pass would plan nothing again. Reconciling 100,000 instances takes a third
        // of a second, which every wake-up of an idle leader spent for nothing.
        var idle: (index: UInt64, revisitAt: Timestamp?)?
        while !Task.isCancelled {
            // Woken by a change, at the interval, or when the idle state next calls for a decision
            // (a minHealthyTime or a deadline ending): a rollout's next batch must not wait for
            // the next tick of the interval (up to a second per batch).
            let due = idle?.revisitAt.map { max(.milliseconds(1), min(interval, $0.duration(since: ClusterGateway.now()))) }
            seen = await gateway.feed.pace(after: seen, timeout: due ?? interval)
            guard !Task.isCancelled else { return }
            let raft = await gateway.raftStatus()
            guard raft.leader == gateway.node.id else {
                lastPlan = nil
                ledTerm = nil
                idle = nil
                continue
            }
            await commitLivenessChanges(newTerm: ledTerm != raft.term)
            ledTerm = raft.term
            let now = ClusterGateway.now()
            // Planned on a copy, off the Raft node's actor (see `ClusterGateway.snapshot`).
            let state = await gateway.snapshot()
            if let idle, idle.index == state.lastChangeIndex, idle.revisitAt.map({ now < $0 }) ?? true { continue }
            let decisions = Reconciler.reconcile(state, for: .all, at: now)
            let plan = Scheduler().place(decisions, in: state, placementLimit: Scheduler.defaultPlacementLimit)
            idle = plan.decidesNothing ? (state.lastChangeIndex, decisions.revisitAt) : nil
            // A plan that decides nothing changes only the unplaced reasons; commit it once,
            // not on every wake-up.
            if plan.decidesNothing && (plan.unplaced.isEmpty || plan == lastPlan) { continue }
            lastPlan = plan
            do {
                let (result, _) = try await gateway.submit(.commitPlan(plan))
                if case .planCommitted(let outcome) = result, !outcome.rejected.isEmpty {
                    logger.info("plan partly rejected", metadata: ["rejected": "\(outcome.rejected.map(\.reason))"])
                }
            } catch {
                idle = nil
                logger.warning("could not commit a plan", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Commits what the leader's memory of heartbeats says changed: nodes silent past the
    /// timeout go down, down nodes heard again come up. A leader new in its term first gives
    /// every node a fresh timeout (it has heard nobody yet); so does a node registered since.
    private func commitLivenessChanges(newTerm: Bool) async {
        let now = ContinuousClock.now
        guard let nodes = try? await gateway.read({ state in state.nodes.mapValues { ($0.isDown, $0.lastHeartbeat) } }) else { return }
        let transitions = gateway.liveness.withLock { liveness in
            if newTerm { liveness.becameLeader(at: now, nodes: nodes.keys) }
            for node in liveness.unknown(among: nodes.keys) { liveness.startGrace(for: node, at: now) }
            return liveness.transitions(committed: nodes.mapValues(\.0), at: now)
        }
        for transition in transitions {
            switch transition {
            case .down(let node):
                logger.warning("node missed its heartbeats; marking it down", metadata: ["node": "\(node)"])
                _ = try? await gateway.submit(.markNodeDown(node: node, lastHeartbeatSeen: nodes[node]?.1))
            case .up(let node):
                logger.notice("node heard again; marking it up", metadata: ["node": "\(node)"])
                _ = try? await gateway.submit(.nodeHeartbeat(node: node))
            }
        }
    }
}
