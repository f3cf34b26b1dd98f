import CSpawn
import Glibc
import Manifest
import NIOCore
import Synchronization

/// The node's local proxy for upstreams: the routes (one balancer per distinct upstream
/// declaration, shared by the node's instances), kept current from the catalog by the agent
/// through ``update(_:)``, and the listeners of `host`-mode instances, which share the node's
/// loopback: the first instance of a service to need a local port binds it, the last to go
/// closes it, and another service's upstream on the same port is refused.
public final class UpstreamDirectory: Sendable {
    private struct RouteEntry {
        var route: UpstreamRoute
        var users: Int
    }

    private struct HostListener {
        /// The service whose instances declared it: only they share it.
        var serviceName: String
        var server: ForwardingServer
        /// Where its connections go: the route of the declaration attached last.
        var route: CurrentRoute
        /// The instances attached, by their declaration of this local port: two revisions of
        /// the service (a rollout starts the new before it stops the old) may declare it with
        /// other settings, a strategy or a timeout, and the newer takes the port over.
        var users: [(upstream: Upstream, count: Int)]
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
    /// or joins the listener its service's other instances opened; a declaration of the port
    /// other than theirs (a new revision's) takes it over from then on. Throws with what is in
    /// the way: another program, or another service's upstream.
    func attachHost(_ upstream: Upstream, serviceName: String) throws(UpstreamBindFailure) {
        try state.withLock { (state: inout State) throws(UpstreamBindFailure) in
            if var listener = state.hostListeners[upstream.localPort] {
                guard listener.serviceName == serviceName else {
                    throw UpstreamBindFailure(
                        upstream: upstream, call: "bind", errno: EADDRINUSE,
                        detail: "the node's 127.0.0.1:\(upstream.localPort) is a local port of service \(listener.serviceName); give this upstream another localPort")
                }
                if let position = listener.users.firstIndex(where: { $0.upstream == upstream }) {
                    listener.users[position].count += 1
                } else {
                    listener.users.append((upstream, 1))
                    listener.route.set(state.acquire(Self.routeKey(upstream), making: makeRoute))
                }
                state.hostListeners[upstream.localPort] = listener
                return
            }
            var failedCall: UnsafePointer<CChar>?
            let fd = fl_tcp_listen("127.0.0.1", Int32(clamping: upstream.localPort), PortPublisher.backlog, &failedCall)
            guard fd >= 0 else {
                throw UpstreamBindFailure(upstream: upstream, call: failedCall.map { String(cString: $0) } ?? "bind", errno: -fd, detail: nil)
            }
            let route = CurrentRoute(state.acquire(Self.routeKey(upstream), making: makeRoute))
            let server = ForwardingServer()
            // Callers share the listener: `consistent-hash` has no caller to key on here.
            server.serve(descriptor: fd, group: group) { inbound in route.get().dial(inbound, key: nil) }
            state.hostListeners[upstream.localPort] = HostListener(serviceName: serviceName, server: server, route: route, users: [(upstream, 1)])
        }
    }

    /// One `host`-mode instance no longer needs the listener; the last one closes it. When
    /// the last instance of the declaration in use goes, the one attached before it is used.
    func detachHost(_ upstream: Upstream) {
        let closing = state.withLock { state -> ForwardingServer? in
            guard var listener = state.hostListeners[upstream.localPort],
                let position = listener.users.firstIndex(where: { $0.upstream == upstream })
            else { return nil }
            listener.users[position].count -= 1
            if listener.users[position].count == 0 {
                listener.users.remove(at: position)
                state.release(Self.routeKey(upstream))
                guard let latest = listener.users.last else {
                    state.hostListeners[upstream.localPort] = nil
                    return listener.server
                }
                // Still held: each declaration attached holds its route until it detaches.
                if let route = state.routes[Self.routeKey(latest.upstream)]?.route { listener.route.set(route) }
            }
            state.hostListeners[upstream.localPort] = listener
            return nil
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

/// The route a shared listener dials through, changed when another declaration takes it over.
final class CurrentRoute: Sendable {
    private let route: Mutex<UpstreamRoute>

    init(_ route: UpstreamRoute) {
        self.route = Mutex(route)
    }

    func get() -> UpstreamRoute { route.withLock { $0 } }

    func set(_ new: UpstreamRoute) { route.withLock { $0 = new } }
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
