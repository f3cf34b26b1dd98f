import AcceptPause
import Foundation
import NIOCore
import NIOPosix
import Synchronization
import Testing

/// A real listener on loopback, its accept failure reported as NIO reports one (an `IOError`
/// through the server channel's pipeline).
@Suite(.timeLimit(.minutes(1)))
struct AcceptPauseHandlerTests {
    /// Binds a listener that pauses for `pause` and records when it accepts; `body` gets its
    /// channel and the instants of the accepts so far.
    static func withListener(
        pause: TimeAmount, _ body: (Channel, @Sendable () -> [ContinuousClock.Instant]) async throws -> Void
    ) async throws {
        let accepted = Mutex<[ContinuousClock.Instant]>([])
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .pausingAcceptOnResourceErrors(for: pause)
            .childChannelInitializer { channel in
                accepted.withLock { $0.append(.now) }
                return channel.close()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        do {
            try await body(server) { accepted.withLock { $0 } }
        } catch {
            try? await server.close()
            throw error
        }
        try await server.close()
    }

    static func connect(_ server: Channel) async throws -> Channel {
        try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(to: try #require(server.localAddress)).get()
    }

    @Test func runningOutOfDescriptorsPausesAcceptingThenResumes() async throws {
        try await Self.withListener(pause: .seconds(1)) { server, accepts in
            let first = try await Self.connect(server)
            defer { first.close(promise: nil) }
            while accepts().isEmpty { try await Task.sleep(for: .milliseconds(5)) }

            server.pipeline.fireErrorCaught(IOError(errnoCode: EMFILE, reason: "accept"))
            let failed = ContinuousClock.now
            // Let the error reach the handler on the loop before the connection arrives.
            try await server.eventLoop.submit {}.get()
            let second = try await Self.connect(server)  // the kernel completes it: the backlog
            defer { second.close(promise: nil) }
            while accepts().count < 2 && ContinuousClock.now - failed < .seconds(10) {
                try await Task.sleep(for: .milliseconds(5))
            }
            let resumed = try #require(accepts().dropFirst().first, "never accepted after the pause")
            #expect(resumed - failed >= .milliseconds(900), "accepted \(resumed - failed) after the failure")
            #expect(resumed - failed < .seconds(5))
        }
    }

    @Test func otherErrorsPassOnAndDoNotPause() async throws {
        try await Self.withListener(pause: .seconds(30)) { server, accepts in
            server.pipeline.fireErrorCaught(IOError(errnoCode: ECONNABORTED, reason: "accept"))
            try await server.eventLoop.submit {}.get()
            let start = ContinuousClock.now
            let client = try await Self.connect(server)
            defer { client.close(promise: nil) }
            while accepts().isEmpty && ContinuousClock.now - start < .seconds(10) { try await Task.sleep(for: .milliseconds(5)) }
            #expect(accepts().count == 1)
        }
    }
}
