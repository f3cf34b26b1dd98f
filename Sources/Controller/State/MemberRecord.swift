/// A Raft member of the cluster: a server agent, by its Raft id (clients run services but are
/// not members). Every server sets its transport's peers from these; a joining server is
/// recorded here before it is added to Raft as a learner.
public struct MemberRecord: Sendable, Hashable, Codable {
    /// Its Raft id.
    public var id: UInt64
    /// Its node name: the name its certificate carries.
    public var name: String
    /// `host:port` of its cluster port.
    public var address: String
    /// The log index at which it was recorded.
    public var addedIndex: UInt64

    public init(id: UInt64, name: String, address: String, addedIndex: UInt64) {
        self.id = id
        self.name = name
        self.address = address
        self.addedIndex = addedIndex
    }
}
