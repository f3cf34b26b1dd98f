import Controller
import Synchronization

/// Who the members and the nodes of the cluster are, as the state machine last applied them,
/// readable without waiting for the Raft node's actor. A heartbeat is checked against it
/// (is its sender a member, speaking for its own node; is the node known): while the actor
/// applies a plan of tens of thousands of placements, heartbeats answered through the actor
/// waited up to seconds.
public final class MembershipDirectory: Sendable {
    private struct Entries {
        var nodeNames: Set<String> = []
        var members: [UInt64: MemberRecord] = [:]
    }

    private let entries = Mutex(Entries())

    public init() {}

    /// Takes what `command`, just applied, changed of the members and nodes in `state`.
    func applied(_ command: ControllerCommand, to state: ClusterState) {
        switch command {
        case .registerNode(let registration) where state.nodes[registration.name] != nil:
            entries.withLock { _ = $0.nodeNames.insert(registration.name) }
        case .addMember, .removeMember:
            let members = state.members
            entries.withLock { $0.members = members }
        default:
            break
        }
    }

    /// Takes everything from `state` (restored from a snapshot).
    func restored(_ state: ClusterState) {
        let names = Set(state.nodes.keys)
        let members = state.members
        entries.withLock { $0 = Entries(nodeNames: names, members: members) }
    }

    func knowsNode(_ name: String) -> Bool { entries.withLock { $0.nodeNames.contains(name) } }

    func member(_ id: UInt64) -> MemberRecord? { entries.withLock { $0.members[id] } }
}
