import CSpawn
import Glibc
import Manifest
import NIOCore
import Synchronization

/// The node's local proxy for upstreams: the routes (one balancer per distinct upstream
/// declaration, shared by the node's instances), kept current from the catalog by the agent
/// through ``update(_:)``, and the listeners of `host`-mode instances, which share the node's
/// loopback: the first instance of a service to need a local port binds it, the last to go
/// closes it, and a different upstream on the same port is refused.
public final class UpstreamDirectory: Sendable {
    private struct RouteEntry {
        var route: UpstreamRoute
        var users: Int
    }

    private struct HostListener {
        /// The declaration it serves (local port included) and the service that declared it.
        var upstream: Upstream
        var serviceName: String
        var server: ForwardingServer
        var users: Int
    }

    private struct State {
        var endpoints: [UpstreamEndpoint] = []
        var routes: [Upstream: RouteEntry] = [:]
        var hostListeners: [Int: HostListener] = [:]
        var ejectionHandler: (@Sendable (UpstreamEjection) -> Void)?

        /// The route of `key`, made if none is in use, counted as used once more.
        mutating func acquire(_ key: Upstream, making make: (Upstream, [UpstreamEndpoint]) -> UpstreamRoute) -> UpstreamRoute {
            var entry = routes[key] ?? RouteEntry(route: make(key, endpoints), users: 0)
            entry.users += 1
            routes[key] = entry
            return entry.route
        }

        /// Counts one use of the route of `key` less; the last one drops it.
        mutating func release(_ key: Upstream) {
            guard var entry = routes[key] else { return }
            entry.users -= 1
            routes[key] = entry.users > 0 ? entry : nil
        }
    }

    private let state = Mutex(State())
    let group: EventLoopGroup

    init(group: EventLoopGroup) {
        self.group = group
    }

    /// The passing instances of the catalog: every route follows at once. New connections go
    /// to these only; established ones are left to finish (an instance that left is drained
    /// for its `drainDelay` before it is signalled).
    public func update(_ endpoints: [UpstreamEndpoint]) {
        let routes = state.withLock { state -> [UpstreamRoute] in
            state.endpoints = endpoints
            return state.routes.values.map(\.route)
        }
        for route in routes { route.update(endpoints) }
    }

    /// Tells `handler` of every instance ejected by a route of this node (the agent logs it).
    public func onEjection(_ handler: @escaping @Sendable (UpstreamEjection) -> Void) {
        state.withLock { $0.ejectionHandler = handler }
    }

    private func makeRoute(_ key: Upstream, endpoints: [UpstreamEndpoint]) -> UpstreamRoute {
        UpstreamRoute(upstream: key, endpoints: endpoints) { [weak self] ejection in
            self?.state.withLock { $0.ejectionHandler }?(ejection)
        }
    }

    /// The shared route of `upstream`, counted as used until ``releaseRoute(_:)``.
    func acquireRoute(_ upstream: Upstream) -> UpstreamRoute {
        state.withLock { $0.acquire(Self.routeKey(upstream), making: makeRoute) }
    }

    func releaseRoute(_ upstream: Upstream) {
        state.withLock { $0.release(Self.routeKey(upstream)) }
    }

    /// Listens for a `host`-mode instance of `serviceName` on 127.0.0.1:`localPort` of the node,
    /// or joins the listener its service's other instances opened. Throws with what is in the way.
    func attachHost(_ upstream: Upstream, serviceName: String) throws(UpstreamBindFailure) {
        try state.withLock { (state: inout State) throws(UpstreamBindFailure) in
            if var listener = state.hostListeners[upstream.localPort] {
                guard listener.upstream == upstream, listener.serviceName == serviceName else {
                    throw UpstreamBindFailure(
                        upstream: upstream, call: "bind", errno: EADDRINUSE,
                        detail: "the node's 127.0.0.1:\(upstream.localPort) is the local port of \(listener.upstream.service) for service \(listener.serviceName); give this upstream another localPort")
                }
                listener.users += 1
                state.hostListeners[upstream.localPort] = listener
                return
            }
            var failedCall: UnsafePointer<CChar>?
            let fd = fl_tcp_listen("127.0.0.1", Int32(clamping: upstream.localPort), PortPublisher.backlog, &failedCall)
            guard fd >= 0 else {
                throw UpstreamBindFailure(upstream: upstream, call: failedCall.map { String(cString: $0) } ?? "bind", errno: -fd, detail: nil)
            }
            let route = state.acquire(Self.routeKey(upstream), making: makeRoute)
            let server = ForwardingServer()
            // Callers share the listener: `consistent-hash` has no caller to key on here.
            server.serve(descriptor: fd, group: group) { inbound in route.dial(inbound, key: nil) }
            state.hostListeners[upstream.localPort] = HostListener(upstream: upstream, serviceName: serviceName, server: server, users: 1)
        }
    }

    /// One `host`-mode instance no longer needs the listener; the last one closes it.
    func detachHost(_ upstream: Upstream) {
        let closing = state.withLock { state -> ForwardingServer? in
            guard var listener = state.hostListeners[upstream.localPort], listener.upstream == upstream else { return nil }
            listener.users -= 1
            guard listener.users == 0 else {
                state.hostListeners[upstream.localPort] = listener
                return nil
            }
            state.hostListeners[upstream.localPort] = nil
            state.release(Self.routeKey(upstream))
            return listener.server
        }
        closing?.close()
    }

    /// Routes are shared whatever the local port: the same upstream called by two services
    /// through different ports is one balancer.
    private static func routeKey(_ upstream: Upstream) -> Upstream {
        var key = upstream
        key.localPort = 0
        return key
    }
}

/// A local port of an upstream that could not be listened on.
struct UpstreamBindFailure: Error, Sendable, CustomStringConvertible {
    var upstream: Upstream
    var call: String
    var errno: Int32
    /// What is in the way, when known better than errno says.
    var detail: String?

    var description: String {
        let reason = detail ?? String(cString: strerror(errno))
        return "upstream \(upstream.service): \(call) 127.0.0.1:\(upstream.localPort): \(reason)"
    }
}
