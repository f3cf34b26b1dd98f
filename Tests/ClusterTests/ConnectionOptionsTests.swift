import Glibc
import NIOCore
import NIOPosix
import Testing

@testable import Cluster

/// The options of connections between agents, read back from the kernel on a real loopback
/// connection.
struct ConnectionOptionsTests {
    @Test func theOptionsReachTheKernelAtTheirOwnLevels() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(to: try #require(server.localAddress)).get()
        let options = ClusterTransport.connectionOptions(unacknowledgedTimeout: .seconds(7))
        for (option, value) in options { try await client.setOption(option, value: value).get() }
        // Option 1 of SOL_SOCKET is SO_DEBUG: TCP_NODELAY set at the wrong level lands there.
        #expect(try await client.getOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_DEBUG))).get() == 0)
        #expect(try await client.getOption(.tcpOption(.tcp_nodelay)).get() != 0)
        #expect(try await client.getOption(.socketOption(.so_keepalive)).get() != 0)
        #expect(try await client.getOption(ClusterTransport.unacknowledgedTimeout).get() == 7000)
        #expect(try await client.getOption(ClusterTransport.keepaliveIdle).get() == 7)
        try await client.close()
        try await server.close()
    }
}
