import Raft
import TestSupport
import Testing

@testable import Cluster

/// A removed member's certificate stays valid up to a day; its connections must not.
@Suite("Removed members")
struct RemovedMemberTests {
    @Test("a removed member's connection is closed, and it is refused when it reconnects; taken back, it is let in again")
    func aRemovedMembersConnectionIsClosedAndRefused() async throws {
        let pki = try TestPKI()
        let one = try await TransportTests.endpoint(pki, id: 1, log: #function + "1")
        // Node 2 does not list node 1: its connection comes in on a link of its own, as a
        // client's or a server's that joined after node 2's copy of the member list.
        let two = try await TransportTests.endpoint(pki, id: 2, log: #function)
        one.transport.setPeers([TransportTests.peer(2, two.port)])
        var term: UInt64 = 1
        try await eventually("delivery before the removal") {
            one.transport.send(TransportTests.numbered(term...term, from: 1, to: 2))
            try await Task.sleep(for: .milliseconds(20))
            return two.received.count > 0
        }

        let refusedBefore = two.transport.statistics.connectionsRefused
        two.transport.setRemovedMembers([1])
        // What was on its way before the close may still arrive: counted from a moment later.
        try await Task.sleep(for: .milliseconds(100))
        let received = two.received.count
        // The dialer redials every 20–200 ms here: a second of sending spans several attempts.
        for _ in 0..<50 {
            term += 1
            one.transport.send(TransportTests.numbered(term...term, from: 1, to: 2))
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(two.received.count == received, "delivered after the removal: \(two.received.count - received)")
        #expect(two.transport.statistics.connectionsRefused > refusedBefore)
        // One warning; the redials after it at debug level (one a few seconds for up to a day).
        let refusals = RecordingLogHandler.lines(of: #function).filter { $0.contains("which was removed from this cluster") }
        #expect(refusals.filter { $0.hasPrefix("warning") }.count == 1, "\(refusals)")
        #expect(refusals.count >= 2 && refusals.dropFirst().allSatisfy { $0.hasPrefix("debug") }, "\(refusals)")

        two.transport.setRemovedMembers([])
        try await eventually("delivery once no longer removed") {
            term += 1
            one.transport.send(TransportTests.numbered(term...term, from: 1, to: 2))
            try await Task.sleep(for: .milliseconds(20))
            return two.received.count > received
        }
        await one.transport.shutdown()
        await two.transport.shutdown()
    }
}
