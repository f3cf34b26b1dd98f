#if canImport(Glibc)
import Glibc
#endif
import AcceptPause
import Balancing
import Manifest
import NIOCore
import NIOPosix

/// Where the connections of one upstream declaration go: a balancer over the passing instances
/// of its service (kept current by `UpstreamDirectory`), shared by every listener of the node
/// that declares the same upstream, so that `least-outstanding` counts the node's connections
/// and an ejection holds for all of them.
final class UpstreamRoute: Sendable {
    let upstream: Upstream
    let balancer: Balancer
    private let reportEjection: @Sendable (UpstreamEjection) -> Void

    /// Attempts per connection: a refused or timed-out connect is retried on another instance
    /// (HAProxy's `retries` with `option redispatch`), each failure counted towards ejection.
    static let attempts = 3

    init(upstream: Upstream, endpoints: [UpstreamEndpoint], reportEjection: @escaping @Sendable (UpstreamEjection) -> Void) {
        self.upstream = upstream
        self.reportEjection = reportEjection
        let detection = OutlierDetection(
            consecutiveFailures: upstream.ejectAfter, baseEjection: upstream.ejectFor, maximumEjection: upstream.ejectFor * 10)
        let configuration = BalancerConfiguration(strategy: Strategy(upstream.strategy), outlierDetection: detection)
        // Valid by construction: the manifest bounds both fields, and backends are checked below.
        balancer = try! Balancer(configuration)
        update(endpoints)
    }

    /// Follows the catalog: the instances of the upstream now passing.
    func update(_ endpoints: [UpstreamEndpoint]) {
        let backends = endpoints.compactMap { endpoint -> Backend? in
            guard let port = endpoint.port(for: upstream), (1...65_535).contains(port) else { return nil }
            return Backend(id: endpoint.id, address: endpoint.address, port: port, weight: min(max(endpoint.weight, 1), Backend.maximumWeight))
        }
        // Ids are unique in a catalog and every field was bounded above: nothing to refuse.
        try? balancer.update(backends: backends)
    }

    /// Opens a connection to a chosen instance for `inbound`, on its event loop, retrying on
    /// others; the lease counts the connection until either side closes. `key`: the caller's
    /// hash under `consistent-hash`.
    func dial(_ inbound: Channel, key: UInt64?) -> EventLoopFuture<Channel> {
        attempt(inbound, key: key, tried: [], remaining: Self.attempts)
    }

    private func attempt(_ inbound: Channel, key: UInt64?, tried: Set<String>, remaining: Int) -> EventLoopFuture<Channel> {
        let loop = inbound.eventLoop
        guard let lease = pickUntried(key: key, tried: tried) else {
            return loop.makeFailedFuture(NoUpstreamInstance(service: upstream.service))
        }
        let backend = lease.backend
        let bootstrap = ClientBootstrap(group: loop)
            .connectTimeout(.nanoseconds(Int64(clamping: upstream.connectTimeout.nanosecondsClamped)))
            .forwardedConnectionOptions()
        let connecting: EventLoopFuture<Channel>
        if let address = try? SocketAddress(ipAddress: backend.address, port: backend.port) {
            connecting = bootstrap.connect(to: address)
        } else {
            connecting = bootstrap.connect(host: backend.address, port: backend.port)
        }
        // The outcome is this attempt's own: settled before the retry is chained, so that a
        // retry's success does not clear the failure streak of the instance that failed. A
        // connection taken is not yet a success: another agent's published port accepts before
        // it knows whether the instance will, and resets when it does not (FirstByteWatch).
        return connecting.flatMapThrowing { outbound in
            let ejection = self.ejection(of: backend)
            let watch = FirstByteWatch(
                onAnswer: { lease.recordSuccess() },
                onRefusal: {
                    if lease.recordFailure() { self.reportEjection(ejection("failed before its first byte")) }
                    // The caller sees what the instance did: no orderly end that reads as an
                    // answer of nothing.
                    ConnectionReset.reset(inbound)
                })
            do {
                try outbound.pipeline.syncOperations.addHandler(watch)
            } catch {
                outbound.close(promise: nil)
                throw error
            }
            inbound.closeFuture.whenComplete { _ in lease.finish() }
            outbound.closeFuture.whenComplete { _ in lease.finish() }
            return outbound
        }.flatMapError { error in
            // Out of descriptors, buffers or local ports: this host's condition, not the
            // instance's. Not counted against it, and not retried on another (it would fail alike).
            guard !Self.isLocalExhaustion(error) else {
                lease.finish()
                return loop.makeFailedFuture(error)
            }
            if lease.recordFailure() { self.reportEjection(self.ejection(of: backend)("\(error)")) }
            lease.finish()
            guard remaining > 1, inbound.isActive else { return loop.makeFailedFuture(error) }
            return self.attempt(inbound, key: key, tried: tried.union([backend.id]), remaining: remaining - 1)
        }
    }

    /// The report of `backend`'s ejection, given the failure that ejected it.
    private func ejection(of backend: Backend) -> @Sendable (String) -> UpstreamEjection {
        let (service, failures) = (upstream.service, upstream.ejectAfter)
        return { error in
            UpstreamEjection(service: service, instanceID: backend.id, address: "\(backend.address):\(backend.port)", failures: failures, error: error)
        }
    }

    /// Whether a connect failed for want of something on this host: a socket (EMFILE, ENFILE),
    /// buffers or memory (ENOBUFS, ENOMEM), or a local port (EADDRNOTAVAIL).
    static func isLocalExhaustion(_ error: any Error) -> Bool {
        // NIO's connects fail with IOError; NamespaceDialer's (a published port's) with
        // SystemCallError.
        let code: Int32
        if let error = error as? IOError {
            code = error.errnoCode
        } else if let error = error as? SystemCallError {
            code = error.errno
        } else {
            return false
        }
        return AcceptPauseHandler.resourceErrors.contains(code) || code == EADDRNOTAVAIL
    }

    /// A lease on an instance not tried yet for this connection, or on any when every one
    /// left has been (one instance, or the rest ejected).
    private func pickUntried(key: UInt64?, tried: Set<String>) -> Lease? {
        balancer.pick(keyHash: key, excluding: tried) ?? balancer.pick(keyHash: key)
    }
}

/// An instance of an upstream that stopped getting connections for a while: what an operator
/// sees in the agent's log.
public struct UpstreamEjection: Sendable, Hashable {
    public var service: String
    public var instanceID: String
    public var address: String
    /// The failures in a row that ejected it.
    public var failures: Int
    /// The last one.
    public var error: String
}

/// No instance of an upstream passes: the caller's connection is closed at once.
struct NoUpstreamInstance: Error, CustomStringConvertible {
    var service: String
    var description: String { "no passing instance of \(service)" }
}

extension Strategy {
    init(_ strategy: UpstreamStrategy) {
        switch strategy {
        case .roundRobin: self = .roundRobin
        case .random: self = .random
        case .weighted: self = .weighted
        case .leastOutstanding: self = .leastOutstanding
        case .powerOfTwoChoices: self = .powerOfTwoChoices
        case .consistentHash: self = .consistentHash
        }
    }
}
