import Glibc
import NIOCore
import NIOPosix
import Testing

@testable import Supervisor

/// The options both sides of a forwarded connection get, read back from a real loopback
/// connection (the kernel's for the socket options).
struct ForwardedConnectionOptionsTests {
    @Test func acceptedAndDialledConnectionsGetTheForwardingOptions() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let accepted = group.next().makePromise(of: (any Channel).self)
        let server = try await ServerBootstrap(group: group).forwardedConnectionOptions()
            .childChannelInitializer { channel in
                accepted.succeed(channel)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let dialled = try await ClientBootstrap(group: group).forwardedConnectionOptions()
            .connect(to: try #require(server.localAddress)).get()
        let acceptedChannel = try await accepted.futureResult.get()
        for channel in [dialled, acceptedChannel] {
            // Option 1 of SOL_SOCKET is SO_DEBUG: TCP_NODELAY set at the wrong level lands there.
            #expect(try await channel.getOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_DEBUG))).get() == 0)
            #expect(try await channel.getOption(.tcpOption(.tcp_nodelay)).get() != 0)
            #expect(try await channel.getOption(.autoRead).get() == false)
            #expect(try await channel.getOption(.allowRemoteHalfClosure).get() == true)
        }
        // With autoRead off the accepted side never reads the EOF: closing the server does not
        // close it, so it is closed here or stays open in the test process.
        try await dialled.close()
        try await acceptedChannel.close()
        try await server.close()
    }
}
