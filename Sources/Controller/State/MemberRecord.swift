/// An agent of the cluster, by the id its join gave it: a server (a Raft member: every server
/// sets its transport's peers from the servers here, and a joining server is recorded here
/// before it is added to Raft as a learner) or a client (runs services, follows the servers,
/// takes no part in Raft; recorded so that ids stay unique and operators see it).
public struct MemberRecord: Sendable, Hashable, Codable {
    /// Its id: its Raft id for a server.
    public var id: UInt64
    /// Its node name: the name its certificate carries.
    public var name: String
    /// `host:port` of its cluster port.
    public var address: String
    /// The log index at which it was recorded.
    public var addedIndex: UInt64
    public var role: MemberRole

    public init(id: UInt64, name: String, address: String, addedIndex: UInt64, role: MemberRole = .server) {
        self.id = id
        self.name = name
        self.address = address
        self.addedIndex = addedIndex
        self.role = role
    }

    private enum CodingKeys: String, CodingKey { case id, name, address, addedIndex, role }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(UInt64.self, forKey: .id)
        name = try container.decode(String.self, forKey: .name)
        address = try container.decode(String.self, forKey: .address)
        addedIndex = try container.decode(UInt64.self, forKey: .addedIndex)
        // Snapshots from before clients existed hold servers only.
        role = try container.decodeIfPresent(MemberRole.self, forKey: .role) ?? .server
    }
}

/// What an agent is to the cluster.
public enum MemberRole: String, Sendable, Hashable, Codable {
    /// A Raft member (voter or learner).
    case server
    /// Runs services only.
    case client
}

/// What a join found under its member id when it read the member list: the log applies its
/// `addMember` only if that still holds, so that of two joins under one name racing each other
/// (two clones of a host), only the first records itself.
public enum MemberExpectation: Sendable, Hashable {
    /// No member with the id yet: a new member.
    case absent
    /// The member at this address: a member joining again, from here or from a new address.
    case at(String)
}
