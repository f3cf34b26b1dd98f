import Manifest

/// Why the state machine refused a command. A refused command changes nothing.
///
/// Every case has a stable ``code`` that the API and deployctl map to statuses and exit codes,
/// and a ``message`` that says what to do.
public enum ControllerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The manifest does not decode; every problem, located by its JSON path.
    case invalidManifest([ManifestIssue])
    /// A check-and-set named a revision that is no longer current (0: the application does not exist).
    case revisionConflict(application: String, expected: UInt64, current: UInt64)
    case applicationNotFound(String)
    case serviceNotFound(ServiceKey)
    case nodeNotFound(String)
    case invalidReplicas(ServiceKey, Int)
    /// A node registration that cannot be right (empty name, no capacity, bad port range).
    case invalidNode(name: String, reason: String)
    /// The leader decided a node was down, but it heartbeated since.
    case staleHeartbeat(node: String, lastHeartbeat: Timestamp)
    /// A member that cannot be recorded as asked (an id or a name taken by another).
    case memberConflict(String)
    /// A log entry that does not decode as a controller entry.
    case undecodableEntry(String)
    /// A snapshot that does not decode as a cluster state.
    case undecodableSnapshot(String)
    /// A key-value key that cannot be one, and why.
    case invalidKey(key: String, reason: String)
    /// A key-value value over the limit.
    case valueTooLarge(key: String, bytes: Int, limit: Int)
    /// A key-value transaction no replica may apply (empty, too many parts).
    case invalidTransaction(String)
    /// A rollout command that makes no sense in the rollout's state, and why.
    case rolloutState(application: String, reason: String)
    /// A revision the application does not have (any more): the ones it keeps.
    case revisionNotFound(application: String, revision: UInt64, kept: [UInt64])
    /// `undo` to a revision that never rolled out whole, or none to go back to.
    case revisionNotRolledOut(application: String, reason: String)

    /// A short identifier that never changes meaning.
    public var code: String {
        switch self {
        case .invalidManifest: "invalid_manifest"
        case .revisionConflict: "revision_conflict"
        case .applicationNotFound: "application_not_found"
        case .serviceNotFound: "service_not_found"
        case .nodeNotFound: "node_not_found"
        case .invalidReplicas: "invalid_replicas"
        case .invalidNode: "invalid_node"
        case .staleHeartbeat: "stale_heartbeat"
        case .memberConflict: "member_conflict"
        case .undecodableEntry: "undecodable_entry"
        case .undecodableSnapshot: "undecodable_snapshot"
        case .invalidKey: "invalid_key"
        case .valueTooLarge: "value_too_large"
        case .invalidTransaction: "invalid_transaction"
        case .rolloutState: "rollout_state"
        case .revisionNotFound: "revision_not_found"
        case .revisionNotRolledOut: "revision_not_rolled_out"
        }
    }

    /// What went wrong and what to do about it.
    public var message: String {
        switch self {
        case .invalidManifest(let issues):
            "the manifest has \(issues.count) problem\(issues.count == 1 ? "" : "s"); fix \(issues.count == 1 ? "it" : "them") and apply again"
        case .revisionConflict(let application, let expected, let current):
            current == 0
                ? "application \"\(application)\" does not exist (expected revision \(expected)); apply without a revision to create it"
                : expected == 0
                    ? "application \"\(application)\" already exists at revision \(current); apply with revision \(current) to replace it"
                    : "application \"\(application)\" is at revision \(current), not \(expected); someone else changed it — review and apply with revision \(current)"
        case .applicationNotFound(let name):
            "no application named \"\(name)\"; list them with `deployctl status`"
        case .serviceNotFound(let key):
            "application \"\(key.application)\" has no service named \"\(key.service)\""
        case .nodeNotFound(let name):
            "no node named \"\(name)\" is registered; list them with `deployctl nodes`"
        case .invalidReplicas(let key, let replicas):
            "\(replicas) is not a valid number of replicas for \(key); use 0 to 10000"
        case .invalidNode(let name, let reason):
            "node \"\(name)\": \(reason)"
        case .staleHeartbeat(let node, let lastHeartbeat):
            "node \"\(node)\" heartbeated at \(lastHeartbeat), after it was judged down; it stays up"
        case .memberConflict(let detail):
            "\(detail); try the join again"
        case .undecodableEntry(let detail):
            "a log entry is not a controller command (\(detail)); the log was written by an incompatible version"
        case .undecodableSnapshot(let detail):
            "the snapshot is not a cluster state (\(detail)); it was written by an incompatible version or is damaged"
        case .invalidKey(let key, let reason):
            "key \"\(key)\": \(reason)"
        case .valueTooLarge(let key, let bytes, let limit):
            "the value for key \"\(key)\" is \(bytes) bytes; values are at most \(limit) (\(limit / 1024) KiB)"
        case .invalidTransaction(let reason):
            reason
        case .rolloutState(let application, let reason):
            "application \"\(application)\": \(reason)"
        case .revisionNotFound(let application, let revision, let kept):
            "application \"\(application)\" has no revision \(revision); it keeps \(kept.map(String.init).joined(separator: ", ")) (see `deployctl rollout history \(application)`)"
        case .revisionNotRolledOut(let application, let reason):
            "application \"\(application)\": \(reason)"
        }
    }

    /// The located problems of an invalid manifest; empty for other errors.
    public var issues: [ManifestIssue] {
        if case .invalidManifest(let issues) = self { return issues }
        return []
    }

    public var description: String {
        issues.isEmpty ? "\(code): \(message)" : "\(code): \(message)\n" + issues.map(\.description).joined(separator: "\n")
    }
}
