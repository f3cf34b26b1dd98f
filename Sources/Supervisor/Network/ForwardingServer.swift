import AcceptPause
import NIOCore
import NIOPosix
import Synchronization

/// The TCP forwarding that published ports and upstreams share: it accepts on listening sockets
/// bound elsewhere (on the node, or inside an instance's network namespace), opens the other
/// side of each connection with a `Dial` of its owner's, and glues the two with backpressure and
/// half-close. The owner decides where connections go; this decides nothing.
final class ForwardingServer: Sendable {
    /// Opens the outbound side of an accepted connection, on the accepted channel's event loop.
    /// A failure closes the accepted connection (the client sees it closed, as docker-proxy's do).
    typealias Dial = @Sendable (_ inbound: Channel) -> EventLoopFuture<Channel>

    private struct State {
        var servers: [Channel] = []
        var connections: [ObjectIdentifier: Channel] = [:]
        var closed = false
    }

    private let state = Mutex(State())
    /// How long a forwarded connection may go without a byte either way before it is closed.
    let idleTimeout: TimeAmount

    /// Envoy's TCP proxy's default: long enough for any connection that is used (a byte in an
    /// hour), short enough that a peer that never reads nor closes gives its descriptors back.
    static let defaultIdleTimeout = TimeAmount.hours(1)

    init(idleTimeout: TimeAmount = ForwardingServer.defaultIdleTimeout) {
        self.idleTimeout = idleTimeout
    }

    /// Starts accepting on `descriptor` (a bound, listening socket, which the server now owns)
    /// and forwarding each connection to what `dial` opens.
    func serve(descriptor: Int32, group: EventLoopGroup, dial: @escaping Dial) {
        let server = ServerBootstrap(group: group)
            .forwardedConnectionOptions()
            .pausingAcceptOnResourceErrors()
            .childChannelInitializer { [self] inbound in
                // Dialing waits for the accepted channel to be active: NIO registers it in a
                // task of its own after this initializer, and a fast dial could finish first.
                let start = StartOnActive { self.forward(inbound, dial: dial) }
                return inbound.eventLoop.makeCompletedFuture {
                    try inbound.pipeline.syncOperations.addHandlers(start, EarlyInputBuffer())
                }
            }
            .withBoundSocket(descriptor)
        server.whenComplete { [self] (result: Result<Channel, Error>) in
            guard case .success(let channel) = result else { return }
            let closeNow = state.withLock { state -> Bool in
                if !state.closed { state.servers.append(channel) }
                return state.closed
            }
            if closeNow { channel.close(promise: nil) }
        }
    }

    /// Closes the listeners and every forwarded connection. Idempotent.
    func close() {
        let channels = state.withLock { state -> [Channel] in
            state.closed = true
            defer {
                state.servers = []
                state.connections = [:]
            }
            return state.servers + Array(state.connections.values)
        }
        for channel in channels { channel.close(promise: nil) }
    }

    private func forward(_ inbound: Channel, dial: Dial) {
        let key = ObjectIdentifier(inbound)
        let accepted = state.withLock { state -> Bool in
            guard !state.closed else { return false }
            state.connections[key] = inbound
            return true
        }
        guard accepted else {
            inbound.close(promise: nil)
            return
        }
        inbound.closeFuture.whenComplete { [self] _ in state.withLock { _ = $0.connections.removeValue(forKey: key) } }
        let loop = inbound.eventLoop
        dial(inbound).hop(to: loop).assumeIsolated().whenComplete { result in
            switch result {
            case .failure:
                inbound.close(promise: nil)
            case .success(let outbound):
                Self.glue(inbound, outbound, idleTimeout: self.idleTimeout)
            }
        }
    }

    /// Joins two channels of one event loop, both created with autoRead off: neither reads until
    /// both have somewhere to write to (a service that speaks first must not have its first
    /// bytes read into an empty pipeline).
    private static func glue(_ inbound: Channel, _ outbound: Channel, idleTimeout: TimeAmount) {
        guard outbound.eventLoop === inbound.eventLoop else {
            outbound.close(promise: nil)
            inbound.close(promise: nil)
            return
        }
        let (inside, outside) = GlueHandler.matchedPair(idleTimeout: idleTimeout)
        do {
            try outbound.pipeline.syncOperations.addHandler(inside)
            try inbound.pipeline.syncOperations.addHandler(outside)
            // What the client sent and half-closed before now goes to the glue on leaving.
            let early = try inbound.pipeline.syncOperations.handler(type: EarlyInputBuffer.self)
            inbound.pipeline.syncOperations.removeHandler(early, promise: nil)
        } catch {
            inside.unmatch()
            outbound.close(promise: nil)
            inbound.close(promise: nil)
            return
        }
        for channel in [inbound, outbound] {
            channel.setOption(.autoRead, value: true).whenFailure { _ in channel.close(promise: nil) }
        }
        if !inbound.isActive { outbound.close(promise: nil) }
    }
}

/// Runs `start` once, when its channel becomes active, then leaves the pipeline.
private final class StartOnActive: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    private let start: @Sendable () -> Void

    init(_ start: @escaping @Sendable () -> Void) {
        self.start = start
    }

    func channelActive(context: ChannelHandlerContext) {
        start()
        context.fireChannelActive()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
