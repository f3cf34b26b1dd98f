import Balancing
import Glibc
import Manifest
import NIOCore
import Synchronization

/// The local ports of one process's upstreams. In `private` network mode they are listeners of
/// its own, bound inside its namespace while the new process waits to run the service (so that
/// its first connection finds them), served once it runs, closed when it exits. In `host` mode
/// they are the node's shared listeners (`UpstreamDirectory.attachHost`), joined before the
/// launch and left at the exit.
final class InstanceUpstreams: Sendable {
    private enum Placement {
        case host(serviceName: String)
        /// Bound descriptors by upstream, until served.
        case namespace([(upstream: Upstream, descriptor: Int32)])
    }

    private struct State {
        var placement: Placement
        var servers: [ForwardingServer] = []
        var acquired: [Upstream] = []
        var closed = false
    }

    private let upstreams: [Upstream]
    private let directory: UpstreamDirectory
    private let state: Mutex<State>

    private init(upstreams: [Upstream], directory: UpstreamDirectory, placement: Placement) {
        self.upstreams = upstreams
        self.directory = directory
        state = Mutex(State(placement: placement))
    }

    /// Joins (or opens) the node's listeners of a `host`-mode instance: all or none.
    static func attachHost(_ upstreams: [Upstream], serviceName: String, directory: UpstreamDirectory) throws(UpstreamBindFailure) -> InstanceUpstreams {
        var attached: [Upstream] = []
        for upstream in upstreams {
            do {
                try directory.attachHost(upstream, serviceName: serviceName)
            } catch {
                for done in attached { directory.detachHost(done) }
                throw error
            }
            attached.append(upstream)
        }
        return InstanceUpstreams(upstreams: upstreams, directory: directory, placement: .host(serviceName: serviceName))
    }

    /// Binds every local port inside `namespace`, on the calling thread (a thread of our own:
    /// it enters the namespace for a moment). All or none.
    static func bind(_ upstreams: [Upstream], in namespace: NetworkNamespace, dialer: NamespaceDialer, directory: UpstreamDirectory)
        throws(UpstreamBindFailure) -> InstanceUpstreams
    {
        var bound: [(upstream: Upstream, descriptor: Int32)] = []
        for upstream in upstreams {
            do {
                let fd = try dialer.listen(in: namespace, port: upstream.localPort, backlog: PortPublisher.backlog)
                bound.append((upstream, fd))
            } catch {
                for (_, fd) in bound { Glibc.close(fd) }
                throw UpstreamBindFailure(upstream: upstream, call: error.call, errno: error.errno, detail: nil)
            }
        }
        return InstanceUpstreams(upstreams: upstreams, directory: directory, placement: .namespace(bound))
    }

    /// Starts accepting on listeners bound in a namespace; `caller` keys `consistent-hash`.
    func serve(caller: String) {
        let key = StableHash.hash(caller)
        let bound = state.withLock { state -> [(upstream: Upstream, descriptor: Int32)] in
            guard !state.closed, case .namespace(let bound) = state.placement else { return [] }
            state.placement = .namespace([])
            return bound
        }
        for (upstream, fd) in bound {
            let route = directory.acquireRoute(upstream)
            let server = ForwardingServer()
            let kept = state.withLock { state -> Bool in
                guard !state.closed else { return false }
                state.servers.append(server)
                state.acquired.append(upstream)
                return true
            }
            guard kept else {
                directory.releaseRoute(upstream)
                Glibc.close(fd)
                continue
            }
            server.serve(descriptor: fd, group: directory.group) { inbound in route.dial(inbound, key: key) }
        }
    }

    /// Closes the instance's listeners and their connections, or leaves the node's shared ones.
    /// Idempotent.
    func close() {
        let (placement, servers, acquired, wasClosed) = state.withLock { state in
            defer {
                state.closed = true
                state.servers = []
                state.acquired = []
                if case .namespace = state.placement { state.placement = .namespace([]) }
            }
            return (state.placement, state.servers, state.acquired, state.closed)
        }
        guard !wasClosed else { return }
        switch placement {
        case .host:
            for upstream in upstreams { directory.detachHost(upstream) }
        case .namespace(let unserved):
            for (_, fd) in unserved { Glibc.close(fd) }
        }
        for server in servers { server.close() }
        for upstream in acquired { directory.releaseRoute(upstream) }
    }
}
