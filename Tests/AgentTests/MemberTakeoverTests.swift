import Cluster
import Foundation
import Raft
import Testing
import TestSupport

/// A join under a member's name from another address takes that member over only once it is
/// marked down; one whose node has not registered yet counts as up.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct MemberTakeoverTests {
    @Test("a member that joined but has not registered its node is not taken over from another address; from its own address it gets its id back")
    func aMemberNotRegisteredYetIsNotTakenOver() async throws {
        let port = try ClusterFormationTests.freePort()
        let server = try ClusterFormationTests.agent("alpha", port: port)
        defer { server.shutdown() }
        let token = try JoinToken(parsing: ClusterFormationTests.joinToken(of: server))
        func join(_ directory: String, advertising address: String) async throws -> ClusterIdentity {
            try await ClusterIdentity.join(
                directory: server.stateDirectory + "/" + directory, host: "127.0.0.1", port: port, token: token, nodeName: "ghost", role: .client,
                advertiseAddress: address
            ).identity
        }
        // Joined, and never starts: no node record.
        let first = try await join("ghost-1", advertising: "127.0.0.1:1")
        do {
            _ = try await join("ghost-2", advertising: "127.0.0.1:2")
            Issue.record("a second agent took over the name of a member whose node has not registered")
        } catch {
            #expect("\(error)".contains("whose node has not registered yet"), "\(error)")
            #expect("\(error)".contains("remove-peer \(first.nodeID)"), "\(error)")
        }
        // The same member with its state lost, from its own address.
        let again = try await join("ghost-3", advertising: "127.0.0.1:1")
        #expect(again.nodeID == first.nodeID)

        // Two agents under one new name joining at the same moment (two clones booting): both
        // read "no such member", both pick the same id; the log records only the first.
        for pair in 0..<5 {
            let name = "twin-\(pair)"
            async let one = Self.outcome { try await ClusterIdentity.join(
                directory: server.stateDirectory + "/\(name)-a", host: "127.0.0.1", port: port, token: token, nodeName: name, role: .client,
                advertiseAddress: "127.0.0.1:\(100 + pair)") }
            async let other = Self.outcome { try await ClusterIdentity.join(
                directory: server.stateDirectory + "/\(name)-b", host: "127.0.0.1", port: port, token: token, nodeName: name, role: .client,
                advertiseAddress: "127.0.0.1:\(200 + pair)") }
            let outcomes = await [one, other]
            #expect(outcomes.filter { $0 == nil }.count == 1, "\(name): \(outcomes)")
            for case let refusal? in outcomes { #expect(refusal.contains(name), "\(refusal)") }
        }
    }

    @Test("a burst of agents under different names joining at once all get in, each with an id of its own")
    func aBurstOfJoinsAllGetIn() async throws {
        let port = try ClusterFormationTests.freePort()
        let server = try ClusterFormationTests.agent("alpha", port: port)
        defer { server.shutdown() }
        let token = try JoinToken(parsing: ClusterFormationTests.joinToken(of: server))
        // Each as agentd joins: asking again after an answer that is not final.
        let ids = try await withThrowingTaskGroup(of: NodeID.self) { group in
            for n in 0..<12 {
                group.addTask {
                    for _ in 0..<50 {
                        do {
                            return try await ClusterIdentity.join(
                                directory: server.stateDirectory + "/burst-\(n)", host: "127.0.0.1", port: port, token: token, nodeName: "burst-\(n)",
                                role: .client, advertiseAddress: "127.0.0.1:\(300 + n)"
                            ).identity.nodeID
                        } catch let error as JoinError where !error.isFinal {
                            try await Task.sleep(for: .milliseconds(50))
                        }
                    }
                    throw CancellationError()
                }
            }
            return try await group.reduce(into: [NodeID]()) { $0.append($1) }
        }
        #expect(Set(ids).count == 12, "\(ids.sorted())")
    }

    /// Nil when `join` succeeded, else its error's text.
    static func outcome(_ join: () async throws -> (identity: ClusterIdentity, servers: [ClusterPeer])) async -> String? {
        do {
            _ = try await join()
            return nil
        } catch {
            return "\(error)"
        }
    }
}
