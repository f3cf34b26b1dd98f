import Foundation
import Glibc
import Manifest
import NIOPosix
import TestSupport
import Testing

@testable import Supervisor

/// The node's shared `host`-mode listeners, with real backends on loopback.
@Suite(.dedicatedThread, .timeLimit(.minutes(10)))
struct UpstreamDirectoryTests {
    /// A rollout of a `host`-mode service starts the new revision's instance before it stops the
    /// old one; when the new revision changes its upstream's settings (here the tag it selects),
    /// the new instance must get the port, not be refused for a port its own service holds.
    @Test func aNewRevisionsDeclarationTakesTheListenerOverAndHandsItBack() throws {
        let one = try Greeter("one")
        let two = try Greeter("two")
        // Listening until the end: ARC may end an object after its last use, before the scope's end.
        defer { withExtendedLifetime([one, two]) {} }
        let directory = UpstreamDirectory(group: MultiThreadedEventLoopGroup.singleton)
        directory.update([
            UpstreamEndpoint(id: "api-1", service: "api", tags: ["v1"], address: "127.0.0.1", ports: ["http": one.port], advertisedPort: "http", weight: 1),
            UpstreamEndpoint(id: "api-2", service: "api", tags: ["v2"], address: "127.0.0.1", ports: ["http": two.port], advertisedPort: "http", weight: 1),
        ])
        let port = try freeLoopbackPort()
        let old = Upstream(service: "api", localPort: port, tag: "v1")
        let new = Upstream(service: "api", localPort: port, tag: "v2", strategy: .roundRobin)

        try directory.attachHost(old, serviceName: "web")
        #expect(try greeting(port: port) == "one")
        try directory.attachHost(new, serviceName: "web")
        #expect(try greeting(port: port) == "two")
        // Another service's upstream on the port is still refused, naming the holder.
        #expect {
            try directory.attachHost(Upstream(service: "api", localPort: port), serviceName: "worker")
        } throws: { "\($0)".contains("is a local port of service web") }

        // The old instance stops: the new declaration keeps the port.
        directory.detachHost(old)
        #expect(try greeting(port: port) == "two")
        // An old instance back (a restart before the rollout ends) takes it until it goes.
        try directory.attachHost(old, serviceName: "web")
        #expect(try greeting(port: port) == "one")
        directory.detachHost(old)
        #expect(try greeting(port: port) == "two")
        directory.detachHost(new)
        #expect(throws: (any Error).self) { try greeting(port: port) }
    }
}

/// A backend that writes `text` to each connection and closes it.
private final class Greeter: Sendable {
    let port: Int
    private let descriptor: Int32

    init(_ text: String) throws {
        let listener = try LoopbackListener(nonBlocking: false)
        descriptor = listener.descriptor
        port = listener.port
        let fd = descriptor
        // The thread closes the socket when accept fails (after the shutdown in deinit): closed
        // by deinit instead, its number could be reused by another test's socket before the
        // thread's next accept, which would then take that socket's connections.
        Thread.detachNewThread {
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { break }
                try? writeAll(client, Array(text.utf8))
                close(client)
            }
            close(fd)
        }
    }

    deinit {
        shutdown(descriptor, Int32(SHUT_RDWR))
    }
}

/// What a connection to 127.0.0.1:`port` is sent before it is closed.
private func greeting(port: Int) throws -> String {
    let fd = try loopbackConnection(port: port, receiveBuffer: 65536)
    defer { close(fd) }
    let text = String(decoding: try readAll(fd), as: UTF8.self)
    guard !text.isEmpty else { throw SystemCallError(call: "read", path: "127.0.0.1:\(port) closed with nothing", errno: 0) }
    return text
}
