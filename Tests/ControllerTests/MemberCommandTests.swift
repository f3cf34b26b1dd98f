import Foundation
import Testing

@testable import Controller

/// The replicated member list: what servers set their peers from.
@Suite struct MemberCommandTests {
    @Test func membersAreRecordedUpdatedAndRemovedThroughTheLog() throws {
        var cluster = TestCluster()
        // Id 1 is the bootstrap server's, even before it recorded itself.
        #expect(cluster.state.nextMemberID == 2)
        #expect(cluster.apply(.addMember(id: 1, name: "alpha", address: "10.0.0.1:7946")) == .memberUpdated(id: 1))
        #expect(cluster.apply(.addMember(id: 2, name: "beta", address: "10.0.0.2:7946")) == .memberUpdated(id: 2))
        #expect(cluster.state.nextMemberID == 3)
        let addedAt = cluster.state.members[2]?.addedIndex
        // A new address for the same member keeps when it was added.
        #expect(cluster.apply(.addMember(id: 2, name: "beta", address: "10.0.0.9:7946")) == .memberUpdated(id: 2))
        #expect(cluster.state.members[2] == MemberRecord(id: 2, name: "beta", address: "10.0.0.9:7946", addedIndex: addedAt ?? 0))
        #expect(cluster.apply(.removeMember(id: 2)) == .memberRemoved(id: 2))
        #expect(cluster.state.members.keys.sorted() == [1])
        // Ids are never given twice: the highest left, and 3 is next, not 2 again.
        #expect(cluster.state.nextMemberID == 3)
        #expect(cluster.state.removedMemberIDs == [2])
        // Snapshots keep it; one from before it was kept derives it from the members.
        let restored = try JSONDecoder().decode(ClusterState.self, from: Data(cluster.state.snapshot()))
        #expect(restored.nextMemberID == 3)
        #expect(restored.removedMemberIDs == [2])
        var older = try JSONSerialization.jsonObject(with: Data(cluster.state.snapshot())) as? [String: Any] ?? [:]
        older["highestMemberID"] = nil
        older["removedMemberIDs"] = nil
        let fromOlder = try JSONDecoder().decode(ClusterState.self, from: JSONSerialization.data(withJSONObject: older))
        #expect(fromOlder.nextMemberID == 2)
        // Recorded again (its own address re-recorded by a removed leader in its last moments),
        // it is no longer refused.
        #expect(cluster.apply(.addMember(id: 2, name: "beta", address: "10.0.0.9:7946")) == .memberUpdated(id: 2))
        #expect(cluster.state.removedMemberIDs.isEmpty)
    }

    @Test("a join under a member's name moves it only from the address it read: of two racing joins, the second is refused")
    func aJoinMovesAMemberOnlyFromTheAddressItRead() {
        // TestCluster applies entries as the log holds them: encoded and decoded again.
        var cluster = TestCluster()
        cluster.apply(.addMember(id: 2, name: "c1", address: "10.0.0.2:7946", role: .client))
        // Two clones of c1 both read 10.0.0.2; the first moves it.
        #expect(cluster.apply(.addMember(id: 2, name: "c1", address: "10.0.0.3:7946", role: .client, expecting: .at("10.0.0.2:7946"))) == .memberUpdated(id: 2))
        let before = cluster.state
        let second = cluster.apply(.addMember(id: 2, name: "c1", address: "10.0.0.4:7946", role: .client, expecting: .at("10.0.0.2:7946")))
        #expect(second.error?.code == "member_conflict")
        #expect(second.error?.message.contains("is at 10.0.0.3:7946 now, not at 10.0.0.2:7946") == true, "\(second)")
        #expect(cluster.state == before)
        // Two new agents under one new name pick the same id; the second finds it taken.
        let absent = cluster.apply(.addMember(id: 3, name: "c2", address: "10.0.0.5:7946", role: .client, expecting: .absent))
        #expect(absent == .memberUpdated(id: 3))
        let racing = cluster.apply(.addMember(id: 3, name: "c2", address: "10.0.0.6:7946", role: .client, expecting: .absent))
        #expect(racing.error?.message.contains("joined from 10.0.0.5:7946 while this join was under way") == true, "\(racing)")
        #expect(cluster.state.members[3]?.address == "10.0.0.5:7946")
    }

    @Test func conflictsAreRefusedAndChangeNothing() {
        var cluster = TestCluster()
        cluster.apply(.addMember(id: 1, name: "alpha", address: "10.0.0.1:7946"))
        let before = cluster.state
        let refusals: [(ControllerCommand, String)] = [
            (.addMember(id: 1, name: "gamma", address: "10.0.0.3:7946"), "member id 1 is alpha, not gamma"),
            (.addMember(id: 3, name: "alpha", address: "10.0.0.3:7946"), "the name alpha is member 1's"),
            (.addMember(id: 0, name: "zero", address: "10.0.0.3:7946"), "member id 0 is not an id"),
            (.addMember(id: 4, name: "", address: "10.0.0.3:7946"), "needs a name and an address"),
            (.removeMember(id: 7), "member 7 is not a member"),
        ]
        for (command, message) in refusals {
            let result = cluster.apply(command)
            #expect(result.error?.code == "member_conflict", "\(command)")
            #expect(result.error?.message.contains(message) == true, "\(result)")
        }
        #expect(cluster.state.members == before.members)
        #expect(cluster.state.lastChangeIndex == before.lastChangeIndex)
    }

    @Test func membersSurviveASnapshotAndOldSnapshotsHaveNone() throws {
        var cluster = TestCluster()
        cluster.apply(.addMember(id: 1, name: "alpha", address: "10.0.0.1:7946"))
        let restored = try ClusterState.restore(from: cluster.state.snapshot())
        #expect(restored.members == cluster.state.members)
        // A snapshot written before members existed (no "members" key) still loads.
        var object = try #require(try JSONSerialization.jsonObject(with: Data(cluster.state.snapshot())) as? [String: Any])
        object.removeValue(forKey: "members")
        let old = try JSONSerialization.data(withJSONObject: object)
        #expect(try ClusterState.restore(from: Array(old)).members.isEmpty)
    }

    @Test func clientsAreMembersWithoutAnAddressAndKeepTheirRole() {
        var cluster = TestCluster()
        #expect(cluster.apply(.addMember(id: 1, name: "alpha", address: "10.0.0.1:7946")) == .memberUpdated(id: 1))
        #expect(cluster.apply(.addMember(id: 2, name: "c1", address: "", role: .client)) == .memberUpdated(id: 2))
        #expect(cluster.state.servers.map(\.id) == [1])
        #expect(cluster.state.members[2]?.role == .client)
        // A client's id cannot become a server's without leaving first.
        let result = cluster.apply(.addMember(id: 2, name: "c1", address: "10.0.0.2:7946", role: .server))
        #expect(result.error.map { "\($0)" }?.contains("is a client") == true, "\(result)")
        // Snapshots from before roles existed read as servers.
        let old = try? JSONDecoder().decode(MemberRecord.self, from: Data(#"{"id":3,"name":"x","address":"a:1","addedIndex":4}"#.utf8))
        #expect(old?.role == .server)
    }
}
