import AgentAPI
import Cluster
import Controller
import Foundation
import Raft

/// Asking the agent of the node that runs an instance for its output (its log files stay
/// where it ran), over the mutual-TLS channel: call kind 21, `[21]` + JSON of the request;
/// the answer is JSON of the lines. A server reaches every server and every connected client
/// (a client's connection to it carries calls both ways), so `deployctl logs` works against
/// any agent: a client relays the request to a server, which asks the node.
struct InstanceLogCall: Codable, Sendable {
    static let kind: UInt8 = 21

    var instance: String
    var lines: Int?
    var since: Int64?

    var payload: [UInt8] { [Self.kind] + Array((try? JSONEncoder().encode(self)) ?? Data()) }

    init(instance: String, lines: Int?, since: Int64?) {
        self.instance = instance
        self.lines = lines
        self.since = since
    }

    init(payload: [UInt8]) throws {
        self = try JSONDecoder().decode(Self.self, from: Data(payload.dropFirst()))
    }

    /// This agent's side: the lines from its own supervisor (`local`, once the agent has one).
    static func answer(_ payload: [UInt8], local: Deferred<any InstanceLogSource>) async throws -> [UInt8] {
        guard let source = local.value else { throw APIError(code: APIErrorCode.noLeader, message: "the agent is still starting") }
        let call = try InstanceLogCall(payload: payload)
        return Array(try JSONEncoder().encode(try await source.tail(instance: call.instance, lines: call.lines, since: call.since)))
    }
}

/// A server's source of instance output: this node's supervisor for its own instances, the
/// agent of the instance's node for the others (tails; following is done on that node).
struct ClusterLogSource: InstanceLogSource {
    let local: any InstanceLogSource
    let gateway: ClusterGateway
    let transport: ClusterTransport
    let nodeName: String

    /// Where `instance` runs, when not here: the node and the member id of its agent.
    private func remote(_ instance: String) async throws(APIError) -> (node: String, member: NodeID)? {
        let (node, members) = try await gateway.read { ($0.instances[instance]?.node, $0.members) }
        guard let node, !NodeName.same(node, nodeName) else { return nil }
        guard let member = members.values.first(where: { NodeName.same($0.name, node) }) else {
            throw APIError(code: APIErrorCode.instanceNotFound, message: "instance \"\(instance)\" ran on node \(node), which is not a member of the cluster now; its output stayed there")
        }
        return (node, member.id)
    }

    func tail(instance: String, lines: Int?, since: Int64?) async throws(APIError) -> [LogLine] {
        guard let (node, member) = try await remote(instance) else { return try await local.tail(instance: instance, lines: lines, since: since) }
        let answer: [UInt8]
        do {
            answer = try await transport.call(member, payload: InstanceLogCall(instance: instance, lines: lines, since: since).payload, timeout: .seconds(10))
        } catch {
            throw APIError(code: APIErrorCode.timeout, message: "instance \"\(instance)\" runs on node \(node), whose agent does not answer from here (\(error)): ask it directly, or retry")
        }
        do {
            return try JSONDecoder().decode([LogLine].self, from: Data(answer))
        } catch {
            throw APIError(code: APIErrorCode.internalError, message: "node \(node)'s answer with the output of \(instance) does not decode: \(error)")
        }
    }

    /// Another node's instance: its output pulled from that node's agent as it comes.
    func follow(instance: String, lines: Int?, since: Int64?) async throws(APIError) -> AsyncThrowingStream<LogLine, any Error> {
        guard let (node, member) = try await remote(instance) else { return try await local.follow(instance: instance, lines: lines, since: since) }
        let transport = self.transport
        let opened: AsyncThrowingStream<[UInt8], any Error>
        do {
            let body = Array(try JSONEncoder().encode(InstanceLogCall(instance: instance, lines: lines, since: since)))
            opened = try await StreamCall.open(.instanceLog, body: body) { payload, timeout in
                try await transport.call(member, payload: payload, timeout: timeout)
            }.data
        } catch {
            throw APIError(code: APIErrorCode.timeout, message: "instance \"\(instance)\" runs on node \(node), whose agent does not stream its output from here (\(error)): ask it directly, or retry")
        }
        return InstanceLogCall.lines(from: opened)
    }
}

extension InstanceLogCall {
    /// The serving side of following: the instance's lines from this node's supervisor, as
    /// JSON lines.
    static func produceFollowing(_ body: [UInt8], local: Deferred<any InstanceLogSource>) async throws -> @Sendable (
        @escaping @Sendable ([UInt8]) async -> Void
    ) async throws -> Void {
        guard let source = local.value else { throw APIError(code: APIErrorCode.noLeader, message: "the agent is still starting") }
        let call = try JSONDecoder().decode(InstanceLogCall.self, from: Data(body))
        let lines = try await source.follow(instance: call.instance, lines: call.lines, since: call.since)
        return { write in
            let encoder = JSONEncoder()
            for try await line in lines { await write(Array(try encoder.encode(line)) + [0x0A]) }
        }
    }

    /// JSON lines, in chunks cut anywhere, as the lines they hold.
    static func lines(from chunks: AsyncThrowingStream<[UInt8], any Error>) -> AsyncThrowingStream<LogLine, any Error> {
        AsyncThrowingStream { continuation in
            let reader = Task {
                let decoder = JSONDecoder()
                var pending: [UInt8] = []
                do {
                    for try await chunk in chunks {
                        pending += chunk
                        while let end = pending.firstIndex(of: 0x0A) {
                            continuation.yield(try decoder.decode(LogLine.self, from: Data(pending[..<end])))
                            pending.removeSubrange(...end)
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in reader.cancel() }
        }
    }
}
