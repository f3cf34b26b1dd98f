/// The verdict on a history.
public enum LinearizabilityResult: Sendable, Equatable {
    /// Every key's operations can be put in one order, consistent with real time, that a single
    /// register would have produced.
    case linearizable
    /// No such order exists for this key's operations.
    case notLinearizable(key: String, explanation: ViolationExplanation)
    /// The deadline passed while this key was being searched. Nothing is known about this key
    /// or the keys after it (in sorted order); the keys before it were linearizable. Not a pass.
    case timedOut(key: String)

    public var isLinearizable: Bool { self == .linearizable }
}
