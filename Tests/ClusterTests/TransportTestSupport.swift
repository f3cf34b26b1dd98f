import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Raft
import Synchronization
import TestSupport
import Testing

@testable import Cluster

/// Hands what a transport receives to whoever is set later: a `RaftNode` needs its transport
/// to be made, and the transport its receiver.
final class ReceiverBox: RaftMessageReceiver {
    let target = Mutex<(any RaftMessageReceiver)?>(nil)

    func receive(_ messages: [Message]) {
        target.withLock { $0 }?.receive(messages)
    }
}

/// Keeps every message received, in order.
final class CollectingReceiver: RaftMessageReceiver {
    let messages = Mutex<[Message]>([])

    func receive(_ received: [Message]) {
        messages.withLock { $0.append(contentsOf: received) }
    }

    var count: Int { messages.withLock { $0.count } }
}

/// Polls `condition` every 10 ms until it holds, failing after `timeout`.
func eventually(_ what: String, timeout: Duration = .seconds(10), _ condition: () async throws -> Bool) async throws {
    guard try await pollCondition(timeout: timeout, every: .milliseconds(10), condition) else {
        Issue.record("timed out waiting for \(what)")
        throw CancellationError()
    }
}

/// A cluster CA and node credentials for transport tests.
struct TestPKI {
    let ca: ClusterCA

    init(clusterID: String = "test", createdAt: Date = Date()) throws {
        ca = try ClusterCA.create(clusterID: clusterID, now: createdAt)
    }

    func material(for nodeName: String) throws -> ClusterTLSMaterial {
        try ca.issueNodeCredentials(nodeName: nodeName, now: Date()).tlsMaterial()
    }

    func configuration(id: NodeID, port: Int = 0, maximumQueuedMessages: Int = 4096, maximumFramePayloadBytes: Int = 1 << 20)
        throws -> TransportConfiguration
    {
        TransportConfiguration(
            localID: id, localName: "node-\(id)", listenHost: "127.0.0.1", listenPort: port, tls: try material(for: "node-\(id)"),
            verifier: ca.peerVerifier, maximumFramePayloadBytes: maximumFramePayloadBytes,
            maximumQueuedMessages: maximumQueuedMessages, reconnectInitial: .milliseconds(20), reconnectMaximum: .milliseconds(200))
    }
}

/// A TCP port nothing listens on right now (bound, read, closed).
func unusedPort() throws -> Int {
    let channel = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .bind(host: "127.0.0.1", port: 0).wait()
    defer { try? channel.close().wait() }
    return channel.localAddress?.port ?? 0
}

/// A hand-driven client of a transport's port: TLS with whatever credentials a test gives
/// it, then raw bytes, for frames no real agent would send.
final class RawPeerConnection: Sendable {
    let channel: any Channel

    convenience init(port: Int, tls: ClusterTLSMaterial) async throws {
        try await self.init(port: port, context: tls.context(server: false))
    }

    /// A connection presenting no certificate and checking none, asking for `applicationProtocol`.
    convenience init(port: Int, withoutCertificateSpeaking applicationProtocol: String) async throws {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        configuration.applicationProtocols = [applicationProtocol]
        try await self.init(port: port, context: NIOSSLContext(configuration: configuration))
    }

    init(port: Int, context: NIOSSLContext) async throws {
        channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: nil))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
    }

    /// Writes `bytes` as they are (the TLS handler encrypts them).
    func send(_ bytes: [UInt8]) async throws {
        try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
    }

    /// Writes a frame as the real encoder would.
    func send(_ frame: Frame) async throws {
        var buffer = ByteBuffer()
        FrameEncoder.append(frame, to: &buffer)
        try await send(Array(buffer.readableBytesView))
    }

    /// The certificate the other end presented (DER), once the handshake is done.
    func peerCertificateDER() async throws -> [UInt8] {
        let channel = self.channel
        for _ in 0..<500 {
            let der = try await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.nioSSL_peerCertificate()?.toDERBytes()
            }.get()
            if let der { return der }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw CancellationError()
    }

    /// Whether the other end closes the connection within `timeout`.
    func closedByPeer(within timeout: Duration) async -> Bool {
        let closed = Mutex(false)
        channel.closeFuture.whenComplete { _ in closed.withLock { $0 = true } }
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while clock.now < deadline {
            if closed.withLock({ $0 }) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return false
    }

    func close() async {
        try? await channel.close()
    }
}
