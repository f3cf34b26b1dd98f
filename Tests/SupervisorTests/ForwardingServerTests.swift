import Foundation
import Glibc
import NIOCore
import NIOPosix
import TestSupport
import Synchronization
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

    /// The client sends its upload and half-closes before the backend is reached (so the proxy
    /// has read the client's end already); the backend never reads the upload (which the proxy
    /// then holds, its half-close with it), answers with more than the client, reading slowly,
    /// takes at once, and half-closes. Passing that half-close on to a connection whose input is
    /// shut, NIO closes it fully: what it still held for the client must reach it first.
    @Test func aSlowClientWhoseEndWasReadGetsEveryByteOfABackendThatHalfClosesWithoutReading() throws {
        let answer = [UInt8]((0..<(4 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 >> 9) })
        try withForwarding(dialDelay: .milliseconds(300), backendReceiveBuffer: 2048, dialSendBuffer: 4096, backend: { fd in
            // The proxy has read the client's upload and end by now, most of it held for here.
            usleep(100_000)
            try? writeAll(fd, answer)
            shutdown(fd, Int32(SHUT_WR))
            // The proxy sees the half-close while the upload is still unread here.
            usleep(500_000)
            _ = try? readAll(fd)
        }) { proxyPort in
            let client = try loopbackConnection(port: proxyPort, receiveBuffer: 4096)
            defer { close(client) }
            try writeAll(client, [UInt8](repeating: 42, count: 48 << 10))
            shutdown(client, Int32(SHUT_WR))
            usleep(800_000)
            let received = try readAll(client)
            #expect(received.count == answer.count)
            let same = received == answer
            #expect(same, "the bytes received differ from those sent")
        }
    }

    /// A forwarded connection through which nothing goes either way for the idle timeout is
    /// closed on both sides; one that carries a byte now and then is not.
    @Test func aConnectionIdleForTheTimeoutIsClosedAndABusyOneIsNot() throws {
        let backendSawEnd = Mutex(0)
        // The idle connection's first byte waits for the backend to finish with the busy one:
        // under the full suite's load that took over 600 ms once (a clean-clone CI run), and
        // the idle timeout closed the connection before its echo.
        try withForwarding(idleTimeout: .seconds(2), backend: { fd in
            // Echoes until the end, then counts it.
            var byte: UInt8 = 0
            while read(fd, &byte, 1) == 1 { _ = write(fd, &byte, 1) }
            backendSawEnd.withLock { $0 += 1 }
        }) { proxyPort in
            // The backend serves one connection at a time: this one is closed before the next.
            let busy = try loopbackConnection(port: proxyPort, receiveBuffer: 4096)
            for _ in 0..<8 {
                try writeAll(busy, [7])
                var echoed: UInt8 = 0
                #expect(read(busy, &echoed, 1) == 1 && echoed == 7, "a connection used every 250 ms stays open")
                usleep(250_000)
            }
            close(busy)
            let idle = try loopbackConnection(port: proxyPort, receiveBuffer: 4096)
            defer { close(idle) }
            try writeAll(idle, [1])
            var byte: UInt8 = 0
            #expect(read(idle, &byte, 1) == 1)
            let began = ContinuousClock.now
            // SO_RCVTIMEO is 10 s: a read that returns 0 before then is the proxy's close.
            #expect(read(idle, &byte, 1) == 0, "closed by the proxy")
            #expect(ContinuousClock.now - began < .seconds(5))
            // The backend's side too.
            let deadline = ContinuousClock.now + .seconds(5)
            while backendSawEnd.withLock({ $0 }) < 2 && ContinuousClock.now < deadline { usleep(20_000) }
            #expect(backendSawEnd.withLock { $0 } == 2)
        }
    }

    /// A client that never reads, whose backend sent a long answer and closed: the backend's
    /// side goes first, and the client's, holding what it could not send, is closed by the idle
    /// timeout all the same.
    @Test func aClientThatNeverReadsIsClosedAfterItsBackendLeft() throws {
        let answer = [UInt8](repeating: 9, count: 4 << 20)
        // The proxy's socket to the client sends little (SO_SNDBUF inherited from the listener):
        // what it cannot send stays in the proxy's own pending writes.
        let backendDone = Mutex(false)
        try withForwarding(idleTimeout: .milliseconds(600), listenerSendBuffer: 4096, backend: { fd in
            try? writeAll(fd, answer)
            backendDone.withLock { $0 = true }
        }) { proxyPort in
            let client = try loopbackConnection(port: proxyPort, receiveBuffer: 4096)
            defer { close(client) }
            try writeAll(client, [1])
            /// The proxy's connections with the client (established, seen from the proxy's port).
            func established() throws -> Int {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/usr/bin/ss")
                process.arguments = ["-Htn", "state", "established", "( sport = :\(proxyPort) )"]
                let output = Pipe()
                process.standardOutput = output
                try process.run()
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                return text.split(separator: "\n").count
            }
            usleep(100_000)
            let before = try established()
            #expect(before == 1, "\(before)")
            // The backend has gone (its answer all taken by the proxy), else this tests nothing.
            let gone = ContinuousClock.now + .seconds(5)
            while !backendDone.withLock({ $0 }) && ContinuousClock.now < gone { usleep(20_000) }
            try #require(backendDone.withLock { $0 }, "the backend could not write its answer")
            let deadline = ContinuousClock.now + .seconds(5)
            while try established() > 0 && ContinuousClock.now < deadline { usleep(100_000) }
            #expect(try established() == 0, "the proxy still holds the connection of a client that never reads")
        }
    }
}

/// Runs `body` with the port of a `ForwardingServer` whose connections go to a backend of this
/// process: `serve` on a thread, for each connection it accepts, closing it after. `dialDelay`
/// holds each connection to the backend back; `backendReceiveBuffer` sets SO_RCVBUF of the
/// backend's sockets (inherited from the listener, so the window is small from the start), and
/// `dialSendBuffer` SO_SNDBUF of the proxy's connections to it: with both small, what the proxy
/// writes to the backend stays in the proxy's own pending writes. `listenerSendBuffer`: SO_SNDBUF
/// of the proxy's connections with its clients.
private func withForwarding(
    idleTimeout: TimeAmount = ForwardingServer.defaultIdleTimeout, dialDelay: TimeAmount = .zero,
    backendReceiveBuffer: Int32? = nil, dialSendBuffer: Int32? = nil, listenerSendBuffer: Int32? = nil,
    backend serve: @escaping @Sendable (Int32) -> Void, _ body: (Int) throws -> Void
) throws {
    let backend = try LoopbackListener(nonBlocking: false)
    if var size = backendReceiveBuffer {
        setsockopt(backend.descriptor, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
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
    if var size = listenerSendBuffer {
        setsockopt(listener.descriptor, SOL_SOCKET, SO_SNDBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    }
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let server = ForwardingServer(idleTimeout: idleTimeout)
    // The server owns the listening descriptor from here, and closes it.
    server.serve(descriptor: listener.descriptor, group: group) { inbound in
        inbound.eventLoop.scheduleTask(in: dialDelay) {}.futureResult.flatMap {
            var bootstrap = ClientBootstrap(group: inbound.eventLoop).forwardedConnectionOptions()
            if let size = dialSendBuffer { bootstrap = bootstrap.channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(size)) }
            return bootstrap.connect(host: "127.0.0.1", port: backendPort)
        }
    }
    defer {
        server.close()
        try? group.syncShutdownGracefully()
    }
    try body(listener.port)
}
