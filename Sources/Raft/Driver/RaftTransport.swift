/// Carries Raft messages between the members of a group.
///
/// `send` must not block: it queues and returns, because the node calls it from its actor while
/// holding up everything else. Delivery is best effort; Raft tolerates loss, duplication and
/// reordering (paper §5.1), so a transport need not retry. The network transport of the cluster
/// issue implements this over TLS; `InProcessNetwork` implements it inside one process.
public protocol RaftTransport: Sendable {
    /// Sends each message to `message.to`.
    func send(_ messages: [Message])
}

/// Where a transport hands the messages it receives for one node.
public protocol RaftMessageReceiver: Sendable {
    /// Takes messages addressed to this node; must not block.
    func receive(_ messages: [Message])
}
