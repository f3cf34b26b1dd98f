import Foundation
import Glibc
import NIOCore
import NIOPosix
import TestSupport
import Testing

@testable import Supervisor

/// `ForwardingServer` between a client and a backend of this process, over loopback sockets.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct ForwardingServerTests {
    /// The client half-closes first; the backend then sends more than the socket buffers and the
    /// proxy's high-water mark hold, and closes. The proxy's outbound side sees EOF with its
    /// output already shut, so NIO closes it fully, while the client, reading slowly, has not
    /// taken the last bytes yet: those must still reach it.
    @Test func aSlowClientGetsEveryByteOfABackendThatClosesAfterTheClientHalfClosed() throws {
        let body = [UInt8]((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 11) })
        try withForwarding(backend: { fd in
            _ = try? readAll(fd)
            try? writeAll(fd, body)
        }) { proxyPort in
            let client = try loopbackConnection(port: proxyPort, receiveBuffer: 4096)
            defer { close(client) }
            try writeAll(client, [1])
            // Glued by now: the half-close goes the usual way, not the one before gluing.
            usleep(200_000)
            shutdown(client, Int32(SHUT_WR))
            // The backend writes while nobody reads: the proxy holds what the client has not taken.
            usleep(500_000)
            let received = try readAll(client)
            #expect(received.count == body.count)
            // A Bool: on failure swift-testing would diff two 4 MiB arrays, for minutes.
            let same = received == body
            #expect(same, "the bytes received differ from those sent")
        }
    }

    /// A request and its half-close sent at once, before the proxy has its connection to the
    /// backend: NIO reads them on the EOF notification, and they must reach the backend, which
    /// answers once it has the whole request.
    @Test func aRequestHalfClosedBeforeTheBackendIsReachedGetsThere() throws {
        let request = Array("GET / HTTP/1.0\r\n\r\n".utf8)
        try withForwarding(backend: { fd in
            let received = (try? readAll(fd)) ?? []
            try? writeAll(fd, Array("got \(received.count) bytes".utf8))
        }) { proxyPort in
            for _ in 0..<20 {
                let client = try loopbackConnection(port: proxyPort, receiveBuffer: 65536)
                defer { close(client) }
                try writeAll(client, request)
                shutdown(client, Int32(SHUT_WR))
                let answer = String(decoding: try readAll(client), as: UTF8.self)
                #expect(answer == "got \(request.count) bytes")
            }
        }
    }
}

/// Runs `body` with the port of a `ForwardingServer` whose connections go to a backend of this
/// process: `serve` on a thread, for each connection it accepts, closing it after.
private func withForwarding(backend serve: @escaping @Sendable (Int32) -> Void, _ body: (Int) throws -> Void) throws {
    let backend = try LoopbackListener(nonBlocking: false)
    let backendPort = backend.port
    // The thread closes the listener once accept fails: closed from here instead, its number
    // could go to another test's socket before the thread's next accept.
    Thread.detachNewThread {
        while true {
            let fd = accept(backend.descriptor, nil, nil)
            guard fd >= 0 else { break }
            serve(fd)
            close(fd)
        }
        close(backend.descriptor)
    }
    // Ends the backend's accept loop.
    defer { shutdown(backend.descriptor, Int32(SHUT_RDWR)) }
    let listener = try LoopbackListener()
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let server = ForwardingServer()
    // The server owns the listening descriptor from here, and closes it.
    server.serve(descriptor: listener.descriptor, group: group) { inbound in
        ClientBootstrap(group: inbound.eventLoop).forwardedConnectionOptions().connect(host: "127.0.0.1", port: backendPort)
    }
    defer {
        server.close()
        try? group.syncShutdownGracefully()
    }
    try body(listener.port)
}
