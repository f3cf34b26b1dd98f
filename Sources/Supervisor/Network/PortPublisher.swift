import CSpawn
import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// The published ports of one process of a `private`-network instance: for each named port, a
/// listening socket on the node at the port's number, whose connections are forwarded to
/// 127.0.0.1 at the same number inside the instance's network namespace (a connection the
/// instance does not take there is reset). A userspace proxy like
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
        /// Bound descriptors not yet handed to the server (closed by `close` if never served).
        var unserved: [Listener]
        var closed = false
    }

    /// How many connections a listener queues before the proxy accepts them.
    static let backlog: Int32 = 511
    /// How long a forwarded connection may take to be accepted inside the namespace.
    static let connectTimeout: Duration = .seconds(5)

    let address: String
    private let state: Mutex<State>
    private let server = ForwardingServer()

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
            server.serve(descriptor: listener.descriptor, group: group) { inbound in
                let loop = inbound.eventLoop
                // A connection the instance does not take is reset, as the instance's own refusal
                // would have been: closed in order, it reads as an answer of nothing, and another
                // agent's proxy could not tell it from one (FirstByteWatch).
                return dialer.connected(into: namespace, port: port, on: loop, watcher: watcher, timeout: Self.connectTimeout)
                    .flatMap { fd in
                        ClientBootstrap(group: loop).forwardedConnectionOptions().withConnectedSocket(fd)
                    }
                    .flatMapErrorThrowing { error in
                        // Out of descriptors or buffers here: the node's condition, not the
                        // instance's refusal (an orderly close, which no proxy counts).
                        if !UpstreamRoute.isLocalExhaustion(error) { ConnectionReset.reset(inbound) }
                        throw error
                    }
            }
        }
    }

    /// Closes the listeners and every forwarded connection. Idempotent.
    func close() {
        let unserved = state.withLock { state in
            state.closed = true
            defer { state.unserved = [] }
            return state.unserved
        }
        for listener in unserved { Glibc.close(listener.descriptor) }
        server.close()
    }
}

/// strerror as a String.
private func strerror_text(_ errno: Int32) -> String {
    String(cString: strerror(errno))
}
