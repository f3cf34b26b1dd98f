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
        two.transport.setMemberDirectory(names: [:], removed: [1])
        // What was on its way before the close may still arrive: counted from a moment later.
        try await Task.sleep(for: .milliseconds(100))
        let received = two.received.count
        // The dialer backs off from 20 ms to 200 ms here: a second of sending spans several
        // attempts, each refused after its handshake.
        let sending = ContinuousClock.now
        for _ in 0..<50 {
            term += 1
            one.transport.send(TransportTests.numbered(term...term, from: 1, to: 2))
            try await Task.sleep(for: .milliseconds(20))
        }
        let elapsed = ContinuousClock.now - sending
        #expect(two.received.count == received, "delivered after the removal: \(two.received.count - received)")
        #expect(two.transport.statistics.connectionsRefused > refusedBefore)
        // One warning; the redials after it at debug level (one a few seconds for up to a day).
        let refusals = RecordingLogHandler.lines(of: #function).filter { $0.contains("which was removed from this cluster") }
        #expect(refusals.filter { $0.hasPrefix("warning") }.count == 1, "\(refusals)")
        #expect(refusals.count >= 2 && refusals.dropFirst().allSatisfy { $0.hasPrefix("debug") }, "\(refusals)")
        // Backing off, about 8 in a second (20, 40, 80, 160, then 200 ms, ±50%), not one every
        // handshake's time because each got attached for a moment (37 in a second then). The
        // bound grows with the time the loop took on a loaded machine.
        let bound = 8 + Int(elapsed / .milliseconds(100))
        #expect(refusals.count <= bound, "\(refusals.count) refusals in \(elapsed)")

        two.transport.setMemberDirectory(names: [:], removed: [])
        try await eventually("delivery once no longer removed") {
            term += 1
            one.transport.send(TransportTests.numbered(term...term, from: 1, to: 2))
            try await Task.sleep(for: .milliseconds(20))
            return two.received.count > received
        }
        await one.transport.shutdown()
        await two.transport.shutdown()
    }

    @Test("a hello must give a member's id with its name: a member saying another's id is refused, though that one is not connected")
    func aHelloWithAnotherMembersIDIsRefused() async throws {
        let pki = try TestPKI()
        let two = try await TransportTests.endpoint(pki, id: 2, log: #function)
        two.transport.setMemberDirectory(names: [1: "node-1", 2: "node-2", 3: "node-3"], removed: [])
        // node-1's certificate (the name is all it names), saying node 3's id. Tried twice: on
        // a loaded machine a connection can also close for another reason (the 10 s to
        // identify itself), which the log would tell.
        let label = #function
        func refusedAsImpostor() -> Bool {
            RecordingLogHandler.lines(of: label).contains { $0.contains("but member 3 is node-3") }
        }
        for _ in 0..<2 where !refusedAsImpostor() {
            let impostor = try await RawPeerConnection(port: two.port, tls: try pki.material(for: "node-1"))
            try? await impostor.send(Hello(nodeID: 3, nodeName: "node-1").frame)
            _ = await impostor.closedByPeer(within: .seconds(5))
            await impostor.close()
        }
        #expect(refusedAsImpostor(), "\(RecordingLogHandler.lines(of: #function))")
        // Under its own id it is let in: a real transport of node 1 delivers.
        let one = try await TransportTests.endpoint(pki, id: 1, log: #function + "1")
        one.transport.setPeers([TransportTests.peer(2, two.port)])
        var term: UInt64 = 0
        try await eventually("delivery from node 1 under its own id") {
            term += 1
            one.transport.send(TransportTests.numbered(term...term, from: 1, to: 2))
            try await Task.sleep(for: .milliseconds(20))
            return two.received.count > 0
        }
        await one.transport.shutdown()
        await two.transport.shutdown()
    }
}
