/// A change to the cluster state: what the Raft log carries, one command per entry.
///
/// Every decision is a command (DESIGN.md: "Every decision is a committed log entry"): agents
/// act only on committed state, so a leader change never loses or duplicates a decision.
public enum ControllerCommand: Sendable, Hashable {
    /// Creates or updates an application from manifest text, all its services at once. The text
    /// is decoded and validated again when applied, so that no replica trusts the proposer.
    /// With `expectedRevision`, refused unless the application is at that revision (0: absent).
    case applyApplication(manifestJSON: String, expectedRevision: UInt64?)
    /// Removes an application and stops all its instances.
    case deleteApplication(name: String, expectedRevision: UInt64?)
    /// Sets a service's desired instance count until the next apply of its manifest.
    case scaleService(ServiceKey, replicas: Int, expectedRevision: UInt64?)
    /// Replaces every instance of the service with a new one, as a rollout.
    case restartService(ServiceKey)
    /// Adds a node or updates what it reported; brings it back up if it was down.
    case registerNode(NodeRegistration)
    /// The node is alive again: committed by the leader when a node it had marked down is
    /// heard from (heartbeats themselves stay in the leader's memory, never in the log).
    case nodeHeartbeat(node: String)
    /// The node missed its heartbeats: its instances are lost. Refused when the node's last
    /// heartbeat is no longer `lastHeartbeatSeen` (it came back while the leader decided).
    case markNodeDown(node: String, lastHeartbeatSeen: Timestamp?)
    /// Starts or ends moving a node's instances elsewhere.
    case setNodeDraining(node: String, draining: Bool, deadline: Timestamp? = nil)
    /// Lets the scheduler place new instances on the node, or not; what runs there stays.
    case setNodeEligibility(node: String, eligible: Bool)
    /// Places and stops instances as the scheduler decided.
    case commitPlan(Plan)
    /// What a node's supervisor saw happen to its instances since its last report.
    case reportInstanceStatus(node: String, reports: [InstanceStatusReport])
    /// Records a server member (a joining server, before it enters Raft as a learner), or
    /// its new address. With `expecting` (a join), refused unless the member list still holds
    /// what the join read under the id: of two joins under one name racing each other, only
    /// the first records itself.
    case addMember(id: UInt64, name: String, address: String, role: MemberRole = .server, expecting: MemberExpectation? = nil)
    /// Forgets a server member removed from Raft.
    case removeMember(id: UInt64)
    /// The join token every server admits joins with (its text, `flt1.…`): replicated, so
    /// that any server can admit and a rotation reaches all of them at once.
    case setJoinToken(String)
    /// Pauses, resumes or undoes an application's rollout.
    case controlRollout(application: String, action: RolloutAction)
    /// Applies a key-value transaction (a put, check-and-set or delete is one of one or two
    /// parts): comparisons, then operations, all or nothing.
    case kvTransaction(KVTransaction)
}

/// What an operator asks of a rollout.
public enum RolloutAction: Sendable, Hashable {
    /// Hold the running rollout: no further instance is replaced, no deadline runs.
    case pause
    /// Go on with a paused rollout; its progress deadline starts again.
    case resume
    /// Let a rollout whose canaries all count as updated replace the rest.
    case promote
    /// Apply an earlier revision that rolled out whole again, as a new revision: `to`, or the
    /// latest such revision before the current one.
    case undo(to: UInt64?)
}
