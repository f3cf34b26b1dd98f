/// The application's replicated state, driven by a `RaftNode`: committed entries are applied in
/// log order, exactly once per node lifetime; snapshots replace it wholesale.
///
/// The node owns the value (it lives inside the node's actor), so implementations need no
/// locking; read it through `RaftNode.withStateMachine(_:)`.
public protocol RaftStateMachine: Sendable {
    /// Applies one committed entry of kind `.normal` with non-empty data. (The empty entry a new
    /// leader appends and membership changes are the node's business and never reach here.)
    mutating func apply(_ entry: Entry)

    /// The whole state as bytes, for a snapshot at the last applied entry.
    func snapshot() -> [UInt8]

    /// Replaces the state with the one a snapshot holds (at start, or when the leader sends one).
    mutating func restore(from snapshot: [UInt8]) throws
}
