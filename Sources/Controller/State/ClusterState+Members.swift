extension ClusterState {
    /// Records a member, or updates its address. Refused when the id belongs to another
    /// name or the name to another id: two joins that picked the same id at once, or a second
    /// server under a name already taken; and when the id no longer holds what `expecting`
    /// says the join read (another join under the name came first).
    mutating func addMember(
        id: UInt64, name: String, address: String, role: MemberRole, expecting: MemberExpectation? = nil, at index: UInt64
    ) throws(ControllerError) -> CommandResult {
        guard id != 0 else { throw .memberConflict("member id 0 is not an id (ids start at 1)") }
        guard !name.isEmpty, role == .client || !address.isEmpty else { throw .memberConflict("member \(id) needs a name and an address") }
        if let existing = members[id], existing.name != name {
            throw .memberConflict("member id \(id) is \(existing.name), not \(name)")
        }
        if let holder = members.values.first(where: { $0.name == name && $0.id != id }) {
            throw .memberConflict("the name \(name) is member \(holder.id)'s")
        }
        if let existing = members[id], existing.role != role {
            throw .memberConflict("member \(id) (\(name)) is a \(existing.role.rawValue); remove it before it joins as a \(role.rawValue)")
        }
        switch (expecting, members[id]) {
        case (.absent?, let existing?):
            throw .memberConflict("member \(id) (\(existing.name)) joined from \(existing.address) while this join was under way")
        case (.at(let expected)?, let existing?) where existing.address != expected:
            throw .memberConflict(
                "member \(id) (\(name)) is at \(existing.address) now, not at \(expected) as when this join began: another agent under its name joined meanwhile")
        case (.at?, nil):
            throw .memberConflict("member \(id) (\(name)) was removed while this join was under way")
        default:
            break
        }
        if members[id]?.address == address { return .memberUpdated(id: id) }
        members[id] = MemberRecord(id: id, name: name, address: address, addedIndex: members[id]?.addedIndex ?? index, role: role)
        highestMemberID = max(highestMemberID, id)
        removedMemberIDs.remove(id)
        lastChangeIndex = index
        return .memberUpdated(id: id)
    }

    /// Replaces the join token (checked by the agent that proposes it: the controller does not
    /// know the token format).
    mutating func setJoinToken(_ token: String, at index: UInt64) -> CommandResult {
        guard joinToken != token else { return .joinTokenSet }
        joinToken = token
        lastChangeIndex = index
        return .joinTokenSet
    }

    /// Forgets a member (after it was removed from Raft).
    mutating func removeMember(id: UInt64, at index: UInt64) throws(ControllerError) -> CommandResult {
        guard members.removeValue(forKey: id) != nil else { throw .memberConflict("member \(id) is not a member") }
        removedMemberIDs.insert(id)
        lastChangeIndex = index
        return .memberRemoved(id: id)
    }

    /// The id a new member would get now: one past the highest ever recorded here (a removed
    /// member's id is not given again), and never 1, the bootstrap server's (which records
    /// itself only once it leads: a join that comes before must not take its id).
    public var nextMemberID: UInt64 { max(highestMemberID, members.keys.max() ?? 0, 1) + 1 }
}

extension ClusterState {
    /// The servers among the members: the Raft group's peers.
    public var servers: [MemberRecord] { members.values.filter { $0.role == .server }.sorted { $0.id < $1.id } }
}
