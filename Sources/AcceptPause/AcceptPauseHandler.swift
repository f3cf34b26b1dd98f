#if canImport(Glibc)
import Glibc
#endif
import NIOCore
import NIOPosix

/// Stops a listener accepting for a while after accept(2) fails for want of resources (EMFILE
/// and ENFILE when descriptors run out, ENOBUFS, ENOMEM), then resumes.
///
/// NIO keeps the listener open on those errors, but its read stays pending: the listening
/// socket, still readable with the connection in its backlog, wakes the event loop at once,
/// forever, and every other channel of that loop starves (measured: a whole core). NIO's own
/// `AcceptBackoffHandler` delays the next `read`, which never comes while the read is pending, so
/// it does not stop that. Turning autoRead off does: NIO stops watching the socket until autoRead
/// is back on. Connections wait in the backlog meanwhile, and are accepted on resuming.
public final class AcceptPauseHandler: ChannelInboundHandler {
    public typealias InboundIn = Channel
    public typealias InboundOut = Channel

    private let pause: TimeAmount
    private var resuming: Scheduled<Void>?

    /// `pause`: how long accepting stops after each such failure.
    public init(pause: TimeAmount = .seconds(1)) {
        self.pause = pause
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let ioError = error as? IOError, Self.resourceErrors.contains(ioError.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        guard resuming == nil, let options = context.channel.syncOptions else { return }
        try? options.setOption(.autoRead, value: false)
        resuming = context.eventLoop.assumeIsolated().scheduleTask(in: pause) { [self] in
            resuming = nil
            try? options.setOption(.autoRead, value: true)
        }
    }

    public func handlerRemoved(context: ChannelHandlerContext) {
        resuming?.cancel()
        resuming = nil
    }

    /// The errors of a host out of descriptors, buffers or memory.
    public static let resourceErrors: Set<Int32> = [EMFILE, ENFILE, ENOBUFS, ENOMEM]
}

extension ServerBootstrap {
    /// The listener pauses accepting after accept fails for want of resources
    /// (`AcceptPauseHandler`), instead of spinning its event loop. It takes the server channel's
    /// initializer.
    public func pausingAcceptOnResourceErrors(for pause: TimeAmount = .seconds(1)) -> ServerBootstrap {
        serverChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(AcceptPauseHandler(pause: pause))
            }
        }
    }
}
