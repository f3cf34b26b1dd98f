import Controller
import Logging

/// The leader's work (DESIGN.md: "The leader runs the scheduler and the rollout engine"):
/// after every change, and at least every `interval`, it reconciles desired and actual state
/// into a plan and commits it, one plan at a time (Nomad's model); and it marks nodes down
/// whose heartbeats stopped. Followers run the same loop but do nothing while not leader.
public struct LeaderLoop: Sendable {
    let gateway: ClusterGateway
    let nodeDownTimeout: Duration
    let interval: Duration
    let logger: Logger

    public init(gateway: ClusterGateway, nodeDownTimeout: Duration, interval: Duration = .seconds(1), logger: Logger) {
        self.gateway = gateway
        self.nodeDownTimeout = nodeDownTimeout
        self.interval = interval
        self.logger = logger
    }

    public func run() async {
        var seen: UInt64 = 0
        var lastPlan: Plan?
        while !Task.isCancelled {
            seen = await gateway.feed.wait(after: seen, timeout: interval)
            guard !Task.isCancelled else { return }
            let raft = await gateway.raftStatus()
            guard raft.leader == gateway.node.id else {
                lastPlan = nil
                continue
            }
            await markSilentNodesDown()
            let plan: Plan
            do {
                plan = try await gateway.read { state in Scheduler().schedule(state, for: .all) }
            } catch {
                continue
            }
            // A plan that places and stops nothing changes only the unplaced reasons; commit it
            // once, not on every wake-up.
            if plan.changesNoInstance && (plan.unplaced.isEmpty || plan == lastPlan) { continue }
            lastPlan = plan
            do {
                let (result, _) = try await gateway.submit(.commitPlan(plan))
                if case .planCommitted(let outcome) = result, !outcome.rejected.isEmpty {
                    logger.info("plan partly rejected", metadata: ["rejected": "\(outcome.rejected.map(\.reason))"])
                }
            } catch {
                logger.warning("could not commit a plan", metadata: ["error": "\(error)"])
            }
        }
    }

    private func markSilentNodesDown() async {
        let now = ClusterGateway.now()
        guard let silent = try? await gateway.read({ $0.nodesMissingHeartbeat(at: now, timeout: nodeDownTimeout) }) else { return }
        for node in silent where !node.isDown {
            logger.warning("node missed its heartbeats; marking it down", metadata: ["node": "\(node.name)"])
            _ = try? await gateway.submit(.markNodeDown(node: node.name, lastHeartbeatSeen: node.lastHeartbeat))
        }
    }
}
