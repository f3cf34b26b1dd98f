import CSpawn
import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// The published ports of one process of a `private`-network instance: for each named port, a
/// listening socket on the node at the port's number, whose connections are forwarded to
/// 127.0.0.1 at the same number inside the instance's network namespace. A userspace proxy like
/// Docker's docker-proxy, but inside the supervisor (DESIGN.md §3: no helper process per
/// service); the service sees every connection come from 127.0.0.1.
///
/// The listeners are bound before the process is launched, synchronously, so that a port in use
/// fails the launch with a message naming it; they are served (by NIO, from the descriptors)
/// once the process and its namespace exist, and closed, with every forwarded connection, when
/// the process exits.
final class PortPublisher: Sendable {
    /// One bound port.
    struct Listener: Sendable {
        var name: String
        var port: Int
        var descriptor: Int32
    }

    /// A port that could not be bound, and why.
    struct BindFailure: Error, Sendable, CustomStringConvertible {
        var name: String
        var address: String
        var port: Int
        var error: SystemCallError
        var description: String { "publishing port \"\(name)\": \(error.call) \(address):\(port): \(strerror_text(error.errno))" }
    }

    private struct State {
        /// Bound descriptors not yet handed to NIO (closed by `close` if never started).
        var unserved: [Listener]
        var servers: [Channel] = []
        var connections: [ObjectIdentifier: Channel] = [:]
        var closed = false
    }

    /// How many connections a listener queues before the proxy accepts them.
    static let backlog: Int32 = 511
    /// How long a forwarded connection may take to be accepted inside the namespace.
    static let connectTimeout: Duration = .seconds(5)

    let address: String
    private let state: Mutex<State>

    private init(address: String, listeners: [Listener]) {
        self.address = address
        state = Mutex(State(unserved: listeners))
    }

    /// Binds every port of `ports` on `address` (all or none), in name order.
    static func bind(_ ports: [String: Int], address: String) throws(BindFailure) -> PortPublisher {
        var listeners: [Listener] = []
        for (name, port) in ports.sorted(by: { $0.key < $1.key }) {
            var failedCall: UnsafePointer<CChar>?
            let fd = fl_tcp_listen(address, Int32(clamping: port), backlog, &failedCall)
            guard fd >= 0 else {
                for listener in listeners { Glibc.close(listener.descriptor) }
                let call = failedCall.map { String(cString: $0) } ?? "bind"
                throw BindFailure(name: name, address: address, port: port,
                                  error: SystemCallError(call: call, path: "\(address):\(port)", errno: -fd))
            }
            listeners.append(Listener(name: name, port: port, descriptor: fd))
        }
        return PortPublisher(address: address, listeners: listeners)
    }

    /// Starts accepting on every listener and forwarding into `namespace`.
    func serve(into namespace: NetworkNamespace, group: EventLoopGroup, dialer: NamespaceDialer,
               watcher: DescriptorWatcher)
    {
        let listeners = state.withLock { state -> [Listener] in
            defer { state.unserved = [] }
            return state.closed ? [] : state.unserved
        }
        for listener in listeners {
            let port = listener.port
            let server = ServerBootstrap(group: group)
                .childChannelOption(.autoRead, value: false)
                .childChannelOption(.allowRemoteHalfClosure, value: true)
                .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
                .childChannelInitializer { [self] inbound in
                    // Dialing waits for the accepted channel to be active: NIO registers it in a
                    // task of its own after this initializer, and a fast dial could finish first.
                    let start = StartOnActive { self.forward(inbound, to: port, in: namespace, dialer: dialer, watcher: watcher) }
                    return inbound.eventLoop.makeCompletedFuture { try inbound.pipeline.syncOperations.addHandler(start) }
                }
                .withBoundSocket(listener.descriptor)
            server.whenComplete { [self] (result: Result<Channel, Error>) in
                guard case .success(let channel) = result else { return }
                let closeNow = state.withLock { state -> Bool in
                    if !state.closed { state.servers.append(channel) }
                    return state.closed
                }
                if closeNow { channel.close(promise: nil) }
            }
        }
    }

    /// Closes the listeners and every forwarded connection. Idempotent.
    func close() {
        let (unserved, servers, connections) = state.withLock { state in
            state.closed = true
            defer {
                state.unserved = []
                state.servers = []
                state.connections = [:]
            }
            return (state.unserved, state.servers, Array(state.connections.values))
        }
        for listener in unserved { Glibc.close(listener.descriptor) }
        for channel in servers + connections { channel.close(promise: nil) }
    }

    /// One accepted connection: dial the service inside its namespace, then glue the two.
    private func forward(_ inbound: Channel, to port: Int, in namespace: NetworkNamespace, dialer: NamespaceDialer,
                         watcher: DescriptorWatcher)
    {
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
        dialer.connected(into: namespace, port: port, on: loop, watcher: watcher, timeout: Self.connectTimeout)
            .flatMap { fd -> EventLoopFuture<Channel> in
                // Not reading until glued: a service that speaks first (a banner, a greeting)
                // must not have its first bytes read into an empty pipeline.
                ClientBootstrap(group: loop)
                    .channelOption(.autoRead, value: false)
                    .channelOption(.allowRemoteHalfClosure, value: true)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .withConnectedSocket(fd)
            }
            .hop(to: loop)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .failure:
                    // Refused inside the namespace (nothing listens yet): the client sees its
                    // connection closed, as docker-proxy does.
                    inbound.close(promise: nil)
                case .success(let outbound):
                    guard outbound.eventLoop === loop else {
                        outbound.close(promise: nil)
                        inbound.close(promise: nil)
                        return
                    }
                    let (inside, outside) = GlueHandler.matchedPair()
                    do {
                        try outbound.pipeline.syncOperations.addHandler(inside)
                        try inbound.pipeline.syncOperations.addHandler(outside)
                    } catch {
                        outbound.close(promise: nil)
                        inbound.close(promise: nil)
                        return
                    }
                    // Both sides start reading only now that they have somewhere to write to.
                    for channel in [inbound, outbound] {
                        channel.setOption(.autoRead, value: true).whenFailure { _ in channel.close(promise: nil) }
                    }
                    if !inbound.isActive { outbound.close(promise: nil) }
                }
            }
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

/// strerror as a String.
private func strerror_text(_ errno: Int32) -> String {
    String(cString: strerror(errno))
}
