import Foundation
import Raft
import Synchronization
import Testing
import TestSupport

@testable import Cluster

/// Calls between members over their mutual-TLS connection: what a follower will use to hand a
/// write to the leader.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct CallTests {
    /// Echoes the payload reversed; "fail" throws; "slow" takes 2 s.
    final class Reverser: CallHandler {
        struct Refusal: Error, CustomStringConvertible { var description: String }

        let seen = Mutex<[NodeID]>([])

        func answer(_ payload: [UInt8], from caller: NodeID) async throws -> [UInt8] {
            seen.withLock { $0.append(caller) }
            if payload == Array("fail".utf8) { throw Refusal(description: "not the leader; try node 3") }
            if payload == Array("slow".utf8) { try await Task.sleep(for: .seconds(2)) }
            return payload.reversed()
        }
    }

    struct Pair {
        let one: ClusterTransport
        let two: ClusterTransport
        let handler: Reverser
    }

    /// Node 1 calls; node 2 answers with a `Reverser`.
    static func pair(_ pki: TestPKI, log: String) async throws -> Pair {
        let handler = Reverser()
        let one = try ClusterTransport(configuration: pki.configuration(id: 1), receiver: CollectingReceiver(), logger: RecordingLogHandler.logger(log))
        let two = try ClusterTransport(
            configuration: pki.configuration(id: 2), receiver: CollectingReceiver(), callHandler: handler, logger: RecordingLogHandler.logger(log + "2"))
        let onePort = try await one.start()
        let twoPort = try await two.start()
        one.setPeers([ClusterPeer(id: 2, name: "node-2", host: "127.0.0.1", port: twoPort)])
        two.setPeers([ClusterPeer(id: 1, name: "node-1", host: "127.0.0.1", port: onePort)])
        try await eventually("connected") { one.isConnected(to: 2) && two.isConnected(to: 1) }
        return Pair(one: one, two: two, handler: handler)
    }

    static func outcome(_ body: () async throws(CallError) -> [UInt8]) async -> Result<[UInt8], CallError> {
        do throws(CallError) {
            return .success(try await body())
        } catch {
            return .failure(error)
        }
    }

    @Test("a call is answered by the callee's handler, which knows who called; concurrent calls each get their own answer")
    func callsAreAnswered() async throws {
        let pair = try await Self.pair(try TestPKI(), log: #function)
        #expect(try await pair.one.call(2, payload: [1, 2, 3]) == [3, 2, 1])
        // The other way too: node 1 has no handler, and says so.
        let refused = await Self.outcome { () async throws(CallError) in try await pair.two.call(1, payload: [9]) }
        #expect(refused == .failure(.failed(1, reason: "this agent takes no calls")))
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for value in 0..<50 {
                group.addTask { try await pair.one.call(2, payload: [UInt8(value), 0]) == [0, UInt8(value)] }
            }
            for try await matched in group { #expect(matched) }
        }
        #expect(pair.handler.seen.withLock { Set($0) } == [1])
        await pair.one.shutdown()
        await pair.two.shutdown()
    }

    @Test("the handler's error, a timeout, a lost connection and no connection each fail the call with what happened")
    func failuresSayWhatHappened() async throws {
        let pair = try await Self.pair(try TestPKI(), log: #function)
        let refused = await Self.outcome { () async throws(CallError) in try await pair.one.call(2, payload: Array("fail".utf8)) }
        #expect(refused == .failure(.failed(2, reason: "not the leader; try node 3")))
        let slow = await Self.outcome { () async throws(CallError) in
            try await pair.one.call(2, payload: Array("slow".utf8), timeout: .milliseconds(200))
        }
        #expect(slow == .failure(.timedOut(2, .milliseconds(200))))
        // The caller's task is cancelled while the callee takes its time: the call ends at once.
        let began = ContinuousClock.now
        let waiting = Task { await Self.outcome { () async throws(CallError) in try await pair.one.call(2, payload: Array("slow".utf8), timeout: .seconds(10)) } }
        try await Task.sleep(for: .milliseconds(100))
        waiting.cancel()
        #expect(await waiting.value == .failure(.cancelled(2)))
        #expect(ContinuousClock.now - began < .milliseconds(1900), "not the callee's 2 s")
        // The callee goes away while answering.
        async let lost = Self.outcome { () async throws(CallError) in
            try await pair.one.call(2, payload: Array("slow".utf8), timeout: .seconds(10))
        }
        try await Task.sleep(for: .milliseconds(200))
        await pair.two.shutdown()
        #expect(await lost == .failure(.connectionLost(2)))
        try await eventually("the link notices") { !pair.one.isConnected(to: 2) }
        let none = await Self.outcome { () async throws(CallError) in try await pair.one.call(2, payload: [1]) }
        #expect(none == .failure(.noConnection(2)))
        #expect(await Self.outcome { () async throws(CallError) in try await pair.one.call(7, payload: [1]) } == .failure(.noConnection(7)))
        await pair.one.shutdown()
    }
}
