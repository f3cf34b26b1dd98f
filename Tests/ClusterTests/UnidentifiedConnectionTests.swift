import Foundation
import NIOCore
import Raft
import Testing
import TestSupport

@testable import Cluster

/// What a stranger can make an agent hold on its cluster port. TLS admits a connection without
/// a certificate (a joiner has none yet), so until its first frame says who it is a connection
/// gets small frames, a deadline and a place among a bounded few.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct UnidentifiedConnectionTests {
    /// A transport on loopback with `adjust` applied to its configuration.
    static func endpoint(
        _ pki: TestPKI, log: String, _ adjust: (inout TransportConfiguration) -> Void = { _ in }
    ) async throws -> (transport: ClusterTransport, port: Int) {
        var configuration = try pki.configuration(id: 2)
        adjust(&configuration)
        let transport = try ClusterTransport(
            configuration: configuration, receiver: CollectingReceiver(), logger: RecordingLogHandler.logger(log))
        return (transport, try await transport.start())
    }

    /// A frame header announcing `length` payload bytes of `kind`, without the payload.
    static func header(_ kind: Frame.Kind, length: Int) -> [UInt8] {
        var buffer = ByteBuffer()
        buffer.writeInteger(UInt32(length))
        buffer.writeInteger(kind.rawValue)
        return Array(buffer.readableBytesView)
    }

    @Test("a stranger announcing a frame larger than a join needs is closed at the header; a member's larger frame is read")
    func strangersGetSmallFrames() async throws {
        let pki = try TestPKI()
        // Both 512 KiB frames are under the member limit (1 MiB here) and over a stranger's.
        let server = try await Self.endpoint(pki, log: #function)
        server.transport.setPeers([TransportTests.peer(1, 1)])
        let stranger = try await RawPeerConnection(port: server.port, withoutCertificateSpeaking: ClusterProtocol.join)
        try await stranger.send(Self.header(.joinRequest, length: 512 << 10))
        // Without the small limit it would wait for the rest, half a mebibyte, buffering it.
        #expect(await stranger.closedByPeer(within: .seconds(5)), "the stranger's connection is still open")
        try await eventually("the refusal logged") {
            RecordingLogHandler.lines(of: #function).contains { $0.contains("is over the limit of \(64 << 10)") }
        }
        try await eventually("its place given back") { server.transport.statistics.unidentifiedConnections == 0 }

        let member = try await RawPeerConnection(port: server.port, tls: try pki.material(for: "node-1"))
        try await member.send(Hello(nodeID: 1, nodeName: "node-1").frame)
        // Not a Raft batch: read whole, it is refused as malformed, which shows it was read.
        try await member.send(Self.header(.raft, length: 512 << 10) + [UInt8](repeating: 0xee, count: 512 << 10))
        #expect(await member.closedByPeer(within: .seconds(5)))
        try await eventually("the member's frame read") {
            RecordingLogHandler.lines(of: #function).contains { $0.contains("peer 1 (node-1)") && $0.contains("malformed raft frame") }
        }
        #expect(!RecordingLogHandler.lines(of: #function).contains { $0.contains("peer 1 (node-1)") && $0.contains("over the limit") })
        await server.transport.shutdown()
    }

    @Test("a connection that says nothing is closed after the identification timeout, with a certificate or without")
    func silentStrangersAreClosed() async throws {
        let pki = try TestPKI()
        let server = try await Self.endpoint(pki, log: #function) { $0.identificationTimeout = .milliseconds(300) }
        server.transport.setPeers([TransportTests.peer(1, 1)])
        // A member's certificate (or a removed member's, valid a while yet) and no hello.
        let silentMember = try await RawPeerConnection(port: server.port, tls: try pki.material(for: "node-1"))
        #expect(await silentMember.closedByPeer(within: .seconds(5)), "a silent connection with a certificate is still open")
        let silent = try await RawPeerConnection(port: server.port, withoutCertificateSpeaking: ClusterProtocol.join)
        #expect(await silent.closedByPeer(within: .seconds(5)), "a silent connection is still open")
        try await eventually("the refusal logged") {
            RecordingLogHandler.lines(of: #function).contains { $0.contains("did not identify itself within") }
        }
        try await eventually("its place given back") { server.transport.statistics.unidentifiedConnections == 0 }
        await server.transport.shutdown()
    }

    @Test("past the limit of strangers a new one is refused at once; one leaving makes room; members do not count and are not kept out")
    func strangersAreBounded() async throws {
        let pki = try TestPKI()
        let server = try await Self.endpoint(pki, log: #function) { $0.maximumUnidentifiedConnections = 2 }
        server.transport.setPeers([TransportTests.peer(1, 1), TransportTests.peer(3, 3)])
        // A member, identified by its certificate in the handshake, holds no stranger's place.
        let member = try await RawPeerConnection(port: server.port, tls: try pki.material(for: "node-1"))
        try await member.send(Hello(nodeID: 1, nodeName: "node-1").frame)
        try await eventually("the member attached") { server.transport.isConnected(to: 1) }

        let first = try await RawPeerConnection(port: server.port, withoutCertificateSpeaking: ClusterProtocol.join)
        let second = try await RawPeerConnection(port: server.port, withoutCertificateSpeaking: ClusterProtocol.join)
        try await eventually("two strangers counted") { server.transport.statistics.unidentifiedConnections == 2 }
        // Four more, one after the other: each refused, one line logged for them all (a
        // stranger reconnecting in a loop must not write a line per attempt).
        for attempt in 1...4 {
            let refused = try await RawPeerConnection(port: server.port, withoutCertificateSpeaking: ClusterProtocol.join)
            #expect(await refused.closedByPeer(within: .seconds(5)), "stranger \(attempt) past the limit was let in")
        }
        try await eventually("the refusal logged") {
            RecordingLogHandler.lines(of: #function).contains { $0.contains("2 connections that have not identified themselves are open already") }
        }
        #expect(RecordingLogHandler.lines(of: #function).filter { $0.contains("are open already") }.count == 1)
        #expect(!(await first.closedByPeer(within: .milliseconds(200))))

        // With every place taken, another member still gets in.
        let another = try await RawPeerConnection(port: server.port, tls: try pki.material(for: "node-3"))
        try await another.send(Hello(nodeID: 3, nodeName: "node-3").frame)
        try await eventually("the second member attached") { server.transport.isConnected(to: 3) }

        await first.close()
        // The server sees the close on its own time; a new stranger is let in once it has.
        try await eventually("room for another stranger") { server.transport.statistics.unidentifiedConnections == 1 }
        let next = try await RawPeerConnection(port: server.port, withoutCertificateSpeaking: ClusterProtocol.join)
        #expect(!(await next.closedByPeer(within: .milliseconds(500))), "a stranger was refused with a place free")
        #expect(server.transport.isConnected(to: 1))
        for connection in [second, next, member, another] { await connection.close() }
        // Every place given back: by closes, by the refusal, by the members' handshakes.
        try await eventually("no stranger counted") { server.transport.statistics.unidentifiedConnections == 0 }
        await server.transport.shutdown()
    }
}
