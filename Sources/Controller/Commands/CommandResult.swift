/// What applying one command did. Returned to whoever proposed the entry (the API handler
/// waiting on it); never written anywhere, so it may grow without a format change.
public enum CommandResult: Sendable, Hashable {
    /// The manifest is now `revision`; an empty diff means it was already current and no
    /// revision was made.
    case applicationApplied(name: String, revision: UInt64, diff: ApplicationDiff)
    /// The application is gone; these instances were told to stop.
    case applicationDeleted(name: String, stopping: [InstanceID])
    case serviceScaled(ServiceKey, replicas: Int)
    /// Instances created before `restartIndex` will be replaced.
    case serviceRestarted(ServiceKey, restartIndex: UInt64)
    case nodeUpdated(name: String, status: NodeStatus)
    case planCommitted(PlanOutcome)
    /// Reports for instances not on the reporting node (or no longer known) are ignored.
    case statusRecorded(accepted: Int, ignored: [InstanceID])
    case memberUpdated(id: UInt64)
    case memberRemoved(id: UInt64)
    case joinTokenSet
    /// The application's rollout is now in `phase`; `revision` is the application's current
    /// revision (new after an undo).
    case rolloutControlled(name: String, phase: Rollout.Phase, revision: UInt64)
    /// A key-value transaction was applied, or refused by a comparison (then nothing changed).
    case kvTransactionApplied(KVTransactionResult)
    case rejected(ControllerError)

    /// The reason, when the command was refused.
    public var error: ControllerError? {
        if case .rejected(let error) = self { return error }
        return nil
    }
}

/// What became of a committed plan, placement by placement.
public struct PlanOutcome: Sendable, Hashable {
    /// The instances created, in plan order.
    public var placed: [InstanceID] = []
    /// The instances told to stop (plan stops and the instances placements replaced).
    public var stopped: [InstanceID] = []
    /// Placements that no longer fit the state the plan was committed to.
    public var rejected: [RejectedPlacement] = []
    /// The plan's rollout steps that took effect (a step for a rollout that ended or was
    /// superseded since the plan was made does not).
    public var rollouts: [AppliedRolloutStep] = []

    /// An outcome with nothing in it yet.
    public init() {}
}

/// A placement refused at commit time, and why.
public struct RejectedPlacement: Sendable, Hashable {
    /// The placement as the plan had it.
    public var placement: InstancePlacement
    /// Why it no longer holds.
    public var reason: String
}
