import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Raft
import Synchronization
import TestSupport
import Testing

@testable import Cluster

/// A peer's listener that completes the TLS handshake with a member's certificate and then
/// reads nothing until told to (`resume`), counting what it reads from then on: a hung agent,
/// or a network gone silent before TCP gives up, as the sending side sees it.
final class StalledPeer: Sendable {
    let port: Int
    private let server: any Channel
    private let shared = Shared()
    /// Bytes read since `resume` (after TLS).
    var bytesRead: Int { shared.bytesRead.withLock { $0 } }
    /// Connections accepted so far.
    var connectionsAccepted: Int { shared.accepted.withLock { $0 } }

    init(tls: ClusterTLSMaterial) async throws {
        let context = try tls.context(server: true)
        let shared = self.shared
        server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            // A small receive buffer, fixed (no autotuning up to tcp_rmem's 32 MiB): the
            // sender's socket fills after a few megabytes, not tens.
            .childChannelOption(.socketOption(.so_rcvbuf), value: 64 << 10)
            .childChannelInitializer { channel in
                shared.connection.withLock { $0 = channel }
                shared.accepted.withLock { $0 += 1 }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        NIOSSLServerHandler(context: context), StopReadingAfterHandshake(shared: shared),
                    ])
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        port = server.localAddress?.port ?? 0
    }

    /// Reads again, and goes on reading everything sent.
    func resume() async throws {
        guard let channel = shared.connection.withLock({ $0 }) else { return }
        try await channel.setOption(.autoRead, value: true)
    }

    func close() async {
        try? await shared.connection.withLock({ $0 })?.close()
        try? await server.close()
    }

    private final class Shared: Sendable {
        let connection = Mutex<(any Channel)?>(nil)
        let bytesRead = Mutex(0)
        let accepted = Mutex(0)
    }

    private final class StopReadingAfterHandshake: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let shared: Shared

        init(shared: Shared) { self.shared = shared }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted = event as? TLSUserEvent {
                context.channel.setOption(.autoRead, value: false).whenComplete { _ in }
            }
            context.fireUserInboundEventTriggered(event)
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let count = unwrapInboundIn(data).readableBytes
            shared.bytesRead.withLock { $0 += count }
        }
    }
}

@Suite("A peer that stops reading")
struct StalledPeerTests {
    @Test("costs its sender a bounded queue, not a channel buffer without bound; what waited goes out when it reads again")
    func aStalledPeerCostsABoundedQueue() async throws {
        let pki = try TestPKI()
        let peer = try await StalledPeer(tls: pki.material(for: "node-2"))
        // TCP_USER_TIMEOUT drops a connection whose data stays unacknowledged (5 s by default, a
        // zero window included): long here, so that a slow run of the test on a loaded machine
        // still stalls one connection instead of filling a second after a reconnect.
        var configuration = try pki.configuration(id: 1, maximumQueuedMessages: 64)
        configuration.unacknowledgedTimeout = .seconds(300)
        let transport = try ClusterTransport(configuration: configuration, receiver: CollectingReceiver(), logger: RecordingLogHandler.logger(#function))
        _ = try await transport.start()
        transport.setPeers([TransportTests.peer(2, peer.port)])
        try await eventually("connected") { transport.isConnected(to: 2) }
        // What the connection can hold with the peer reading nothing: the sender's socket (at
        // most tcp_wmem's maximum), the peer's fixed 64 KiB (doubled by the kernel), NIO's
        // high watermark (64 KiB) and one batch that crossed it (the queue's 64 messages).
        let socketMaximum = Int((try? String(contentsOfFile: "/proc/sys/net/ipv4/tcp_wmem", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).last ?? "") ?? 4 << 20
        let holds = socketMaximum + (128 << 10) + (64 << 10) + 64 * 60_000
        // Three times that offered, in 60 KB appends.
        let offered = 3 * holds / 60_000
        let append = Message(
            from: 1, to: 2, term: 1,
            payload: .append(AppendRequest(prevLogIndex: 0, prevLogTerm: 0, entries: [Entry(term: 1, index: 1, data: Array(repeating: 7, count: 60_000))], commit: 0)))
        for _ in 0..<offered {
            transport.send([append])
            try await Task.sleep(for: .milliseconds(1))
        }
        try await Task.sleep(for: .milliseconds(200))
        let stalled = transport.statistics
        #expect(peer.connectionsAccepted == 1)
        // Written to the connection: what it holds, at most; the rest waited in the queue (64
        // at most) or was dropped.
        #expect(stalled.messagesSent * 60_000 <= holds, "\(stalled.messagesSent) of \(offered) written to a connection nobody reads")
        #expect(stalled.messagesDropped > 0)

        // Reading again: the queue goes out, nothing is lost that was not counted as dropped.
        try await peer.resume()
        try await eventually("the queue written") {
            let now = transport.statistics
            return now.messagesSent + now.messagesDropped == offered
        }
        let drained = transport.statistics
        #expect(drained.messagesSent > stalled.messagesSent)
        try await eventually("everything written read by the peer") { peer.bytesRead > drained.messagesSent * 60_000 }
        await transport.shutdown()
        await peer.close()
    }
}
