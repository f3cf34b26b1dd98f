import Cluster
import Controller
import Raft

/// Hands a follower's write to the leader: the entry, as the follower stamped it, goes over
/// the mutual-TLS connection; the leader proposes it and answers its log index. The follower
/// then takes the result from its own replica once it has applied that index: applying is
/// deterministic, so every replica computes the same result for an entry.
public protocol WriteForwarder: Sendable {
    /// Proposes `entry` (a `ControllerEntry`'s bytes) through `leader`; returns its index.
    func forward(_ entry: [UInt8], to leader: NodeID) async throws -> UInt64
}

extension ClusterTransport: WriteForwarder {
    public func forward(_ entry: [UInt8], to leader: NodeID) async throws -> UInt64 {
        let answer = try await call(leader, payload: entry, timeout: .seconds(30))
        guard answer.count == 8 else { throw CallError.failed(leader, reason: "answered \(answer.count) bytes, not a log index") }
        return answer.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
}

/// The leader's side: proposes what followers forward. An entry that does not decode is
/// refused before it reaches the log.
struct ForwardedWrites: CallHandler {
    let node: RaftNode<ControllerMachine>

    func answer(_ payload: [UInt8], from caller: NodeID) async throws -> [UInt8] {
        _ = try ControllerEntry.decode(payload)
        let index = try await node.propose(payload)
        return withUnsafeBytes(of: index.littleEndian) { Array($0) }
    }
}
