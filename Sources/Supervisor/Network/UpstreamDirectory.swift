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
        var route: UpstreamRoute
        var users: Int
    }

    private struct State {
        var endpoints: [UpstreamEndpoint] = []
        var routes: [Upstream: RouteEntry] = [:]
        var hostListeners: [Int: HostListener] = [:]
        /// The catalog index of the endpoints, for whoever waits for the proxy to follow.
        var index: UInt64 = 0
        var ejectionHandler: (@Sendable (UpstreamEjection) -> Void)?
    }

    private let state = Mutex(State())
    let group: EventLoopGroup

    init(group: EventLoopGroup) {
        self.group = group
    }

    /// The passing instances of the catalog at `index`: every route follows at once. New
    /// connections go to these only; established ones are left to finish (an instance that
    /// left is drained for its `drainDelay` before it is signalled).
    public func update(_ endpoints: [UpstreamEndpoint], index: UInt64) {
        let routes = state.withLock { state -> [UpstreamRoute] in
            state.endpoints = endpoints
            state.index = index
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

    /// The catalog index the routes follow.
    public var index: UInt64 {
        state.withLock { $0.index }
    }

    /// The shared route of `upstream`, counted as used until ``releaseRoute(_:)``.
    func acquireRoute(_ upstream: Upstream) -> UpstreamRoute {
        let key = Self.routeKey(upstream)
        return state.withLock { state in
            if var entry = state.routes[key] {
                entry.users += 1
                state.routes[key] = entry
                return entry.route
            }
            let route = makeRoute(key, endpoints: state.endpoints)
            state.routes[key] = RouteEntry(route: route, users: 1)
            return route
        }
    }

    func releaseRoute(_ upstream: Upstream) {
        let key = Self.routeKey(upstream)
        state.withLock { state in
            guard var entry = state.routes[key] else { return }
            entry.users -= 1
            state.routes[key] = entry.users > 0 ? entry : nil
        }
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
            let key = Self.routeKey(upstream)
            let route: UpstreamRoute
            if var entry = state.routes[key] {
                entry.users += 1
                state.routes[key] = entry
                route = entry.route
            } else {
                route = makeRoute(key, endpoints: state.endpoints)
                state.routes[key] = RouteEntry(route: route, users: 1)
            }
            let server = ForwardingServer()
            // Callers share the listener: `consistent-hash` has no caller to key on here.
            server.serve(descriptor: fd, group: group) { inbound in route.dial(inbound, key: nil) }
            state.hostListeners[upstream.localPort] = HostListener(upstream: upstream, serviceName: serviceName, server: server, route: route, users: 1)
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
            let key = Self.routeKey(upstream)
            if var entry = state.routes[key] {
                entry.users -= 1
                state.routes[key] = entry.users > 0 ? entry : nil
            }
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
