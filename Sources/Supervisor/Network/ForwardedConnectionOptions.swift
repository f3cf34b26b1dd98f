import NIOCore
import NIOPosix

// The options of both connections a forwarded stream joins (the accepted one and the one dialled
// to the instance), in one place: `GlueHandler` needs autoRead off (it reads only while the
// partner can take more) and remote half-closure on (an EOF is passed on, not a close), and
// small requests go out at once. TCP_NODELAY is a TCP-level option: as `.socketOption` it
// would be option 1 of SOL_SOCKET, SO_DEBUG.

extension ClientBootstrap {
    /// A connection dialled for forwarding.
    func forwardedConnectionOptions() -> ClientBootstrap {
        channelOption(.autoRead, value: false)
            .channelOption(.allowRemoteHalfClosure, value: true)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
    }
}

extension ServerBootstrap {
    /// Connections accepted for forwarding.
    func forwardedConnectionOptions() -> ServerBootstrap {
        childChannelOption(.autoRead, value: false)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
    }
}
