#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

extension ClusterState: Codable {
    private enum CodingKeys: String, CodingKey {
        case formatVersion, applications, nodes, instances, lastChangeIndex, nextInstanceSerial, members, highestMemberID, removedMemberIDs, joinToken, kv
    }

    /// Bumped when the snapshot encoding changes incompatibly.
    public static let snapshotFormatVersion = 1

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let version = try container.decode(Int.self, forKey: .formatVersion)
        guard version <= Self.snapshotFormatVersion else {
            throw DecodingError.dataCorruptedError(
                forKey: .formatVersion, in: container, debugDescription: "snapshot format \(version) is newer than \(Self.snapshotFormatVersion)")
        }
        applications = try container.decode([String: ApplicationRecord].self, forKey: .applications)
        for name in applications.keys { indexKeyReaders(of: name) }
        nodes = try container.decode([String: NodeRecord].self, forKey: .nodes)
        instances = try container.decode([InstanceID: InstanceRecord].self, forKey: .instances)
        indexInstances()
        lastChangeIndex = try container.decode(UInt64.self, forKey: .lastChangeIndex)
        nextInstanceSerial = try container.decode(UInt64.self, forKey: .nextInstanceSerial)
        // Absent in snapshots of single-node agents from before the cluster.
        members = try container.decodeIfPresent([UInt64: MemberRecord].self, forKey: .members) ?? [:]
        // Absent in snapshots from before it was kept: the highest id among the members then.
        highestMemberID = try container.decodeIfPresent(UInt64.self, forKey: .highestMemberID) ?? members.keys.max() ?? 0
        // Absent in snapshots from before it was kept: removals before then are not known.
        removedMemberIDs = Set(try container.decodeIfPresent([UInt64].self, forKey: .removedMemberIDs) ?? [])
        // Absent in snapshots from before the token was replicated.
        joinToken = try container.decodeIfPresent(String.self, forKey: .joinToken)
        // Absent in snapshots from before the key-value store.
        kv = try container.decodeIfPresent(KVStore.self, forKey: .kv) ?? KVStore()
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(Self.snapshotFormatVersion, forKey: .formatVersion)
        try container.encode(applications, forKey: .applications)
        try container.encode(nodes, forKey: .nodes)
        try container.encode(instances, forKey: .instances)
        try container.encode(lastChangeIndex, forKey: .lastChangeIndex)
        try container.encode(nextInstanceSerial, forKey: .nextInstanceSerial)
        try container.encode(members, forKey: .members)
        try container.encode(highestMemberID, forKey: .highestMemberID)
        // Sorted: equal states give equal bytes.
        try container.encode(removedMemberIDs.sorted(), forKey: .removedMemberIDs)
        try container.encodeIfPresent(joinToken, forKey: .joinToken)
        try container.encode(kv, forKey: .kv)
    }

    /// The whole state as bytes for a Raft snapshot: JSON with sorted keys, so that equal
    /// states give equal bytes (replicas can compare snapshots by checksum).
    public func snapshot() -> [UInt8] {
        do {
            return Array(try ControllerCoding.encoder().encode(self))
        } catch {
            // Only plain values and finite numbers are encoded; a failure is a programming error.
            preconditionFailure("encoding the cluster state failed: \(error)")
        }
    }

    /// The state a snapshot was taken of.
    public static func restore(from bytes: [UInt8]) throws(ControllerError) -> ClusterState {
        do {
            return try JSONDecoder().decode(ClusterState.self, from: Data(bytes))
        } catch {
            throw .undecodableSnapshot("\(error)")
        }
    }
}
