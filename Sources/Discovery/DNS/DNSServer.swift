import AcceptPause
import CDatagram
import NIOCore
import NIOPosix
import Synchronization

/// What every channel of one server shares: the current zone, the limits, the counters.
final class DNSServerShared: Sendable {
    private let current: Mutex<DNSZone>
    let limits: DNSPayloadLimits
    let counters = DNSServerCounters()
    /// Open TCP connections, for the cap and for `stop` to close them: closing the listener does
    /// not close what it accepted, and on the agent's group nothing else would.
    let connections = Mutex<[ObjectIdentifier: any Channel]>([:])

    init(zone: DNSZone, limits: DNSPayloadLimits) {
        self.current = Mutex(zone)
        self.limits = limits
    }

    /// The zone a query is answered from: one reference taken under an uncontended lock, so a
    /// query sees one whole zone even while `update` swaps in the next.
    var zone: DNSZone {
        current.withLock { $0 }
    }

    func replace(_ zone: DNSZone) {
        current.withLock { $0 = zone }
    }
}

/// The DNS server of service discovery: answers from a `DNSZone` over UDP and TCP on one address
/// and port (DESIGN.md §6: every agent answers from its local copy of the catalog).
///
/// ```swift
/// let server = try DNSServer(configuration: .init(host: "127.0.0.1", port: 8600), catalog: catalog,
///                            eventLoopGroup: group)
/// try await server.start()
/// try server.update(newCatalog)   // on every catalog change
/// try await server.stop()
/// ```
public final class DNSServer: Sendable {
    /// Where and how the server listens.
    public struct Configuration: Sendable {
        /// The address to listen on, IPv4 or IPv6 (`127.0.0.1`, `::1`, `0.0.0.0`).
        public var host: String
        /// The port, for UDP and TCP alike; 0 lets the kernel choose (read it from `port`).
        public var port: Int
        /// The UDP payload size our OPT record advertises (RFC 6891 §6.2.3): 1232, the DNS flag
        /// day 2020 value that avoids IP fragmentation.
        public var advertisedUDPPayloadBytes: UInt16
        /// The largest UDP response sent, whatever the client's OPT allows (RFC 6891 §6.2.5):
        /// 1232 by default, what we advertise. A client that offers 4096 (older dig, some stub
        /// resolvers) got up to 4096 bytes: IP fragments on a real network, lost as a whole when
        /// one is dropped (a timeout instead of TC and a retry over TCP), and a 100-fold
        /// amplifier on an address others can reach (DNS flag day 2020).
        public var maxUDPPayloadBytes: Int
        /// A TCP connection without a whole query read or an answer written out for this long is
        /// closed (RFC 7766 §6.2.3); bytes that make no query do not count.
        public var tcpIdleTimeout: Duration
        /// At most this many TCP connections at once; more are closed on accept.
        public var maxTCPConnections: Int
        /// The largest query accepted over TCP; a longer frame closes the connection.
        public var maxTCPQueryBytes: Int
        /// UDP sockets bound to the same port with SO_REUSEPORT, each on an event loop of its own,
        /// for more than one core's worth of queries. 1: one socket, no SO_REUSEPORT.
        public var udpSocketCount: Int
        /// Seeds the answers' shuffle, for tests that want a reproducible order; nil: random.
        public var shuffleSeed: UInt64?

        /// A configuration; the defaults are the agent's.
        public init(
            host: String = "127.0.0.1", port: Int = 8600, advertisedUDPPayloadBytes: UInt16 = 1232,
            maxUDPPayloadBytes: Int = 1232, tcpIdleTimeout: Duration = .seconds(10), maxTCPConnections: Int = 256,
            maxTCPQueryBytes: Int = 4096, udpSocketCount: Int = 1, shuffleSeed: UInt64? = nil
        ) {
            self.host = host
            self.port = port
            self.advertisedUDPPayloadBytes = advertisedUDPPayloadBytes
            self.maxUDPPayloadBytes = maxUDPPayloadBytes
            self.tcpIdleTimeout = tcpIdleTimeout
            self.maxTCPConnections = maxTCPConnections
            self.maxTCPQueryBytes = maxTCPQueryBytes
            self.udpSocketCount = udpSocketCount
            self.shuffleSeed = shuffleSeed
        }
    }

    private enum State {
        case idle
        /// Binding; a `stop` now marks the state stopped, and `start` closes what it bound.
        case starting
        case running(udp: [any Channel], tcp: any Channel, ownGroup: MultiThreadedEventLoopGroup?)
        case stopped
    }

    private let configuration: Configuration
    private let shared: DNSServerShared
    /// The caller's group; nil: `start` makes a one-thread group and `stop` shuts it down.
    private let eventLoopGroup: (any EventLoopGroup)?
    private let state = Mutex<State>(.idle)
    /// Counts handlers made, so that each gets its own stream of a seeded shuffle.
    private let handlerCount = Atomic<UInt64>(0)

    /// A server answering from `zone`, on `eventLoopGroup` (the agent's), or on a one-thread group
    /// of its own that `stop` shuts down.
    public init(configuration: Configuration = Configuration(), zone: DNSZone, eventLoopGroup: (any EventLoopGroup)? = nil) {
        self.configuration = configuration
        self.shared = DNSServerShared(
            zone: zone,
            limits: DNSPayloadLimits(
                advertisedUDPPayloadBytes: max(512, configuration.advertisedUDPPayloadBytes),
                maxUDPPayloadBytes: min(Int(UInt16.max), max(512, configuration.maxUDPPayloadBytes))))
        self.eventLoopGroup = eventLoopGroup
    }

    /// A server answering from a zone built from `catalog`.
    public convenience init(
        configuration: Configuration = Configuration(), catalog: DNSCatalog, eventLoopGroup: (any EventLoopGroup)? = nil
    ) throws(DNSCatalogError) {
        self.init(configuration: configuration, zone: try DNSZone(catalog: catalog), eventLoopGroup: eventLoopGroup)
    }

    /// Answers from `zone` from the next query on.
    public func update(_ zone: DNSZone) {
        shared.replace(zone)
    }

    /// Builds a zone from `catalog` (on the caller's thread, not an event loop) and answers from
    /// it from the next query on. Returns what of the catalog had to be left out.
    @discardableResult
    public func update(_ catalog: DNSCatalog) throws(DNSCatalogError) -> [DNSCatalogProblem] {
        let zone = try DNSZone(catalog: catalog)
        shared.replace(zone)
        return zone.problems
    }

    /// Counters of the answers given so far.
    public var counts: DNSServerCounts {
        shared.counters.snapshot
    }

    /// The port listened on (the kernel's choice when the configuration said 0); nil unless running.
    public var port: Int? {
        state.withLock { state in
            guard case .running(_, let tcp, _) = state else { return nil }
            return tcp.localAddress?.port
        }
    }

    /// Binds UDP and TCP and starts answering. With port 0 the kernel picks a UDP port and TCP
    /// binds the same one; if TCP finds it taken, both try again on another.
    public func start() async throws {
        try state.withLock { state in
            guard case .idle = state else {
                throw DNSServerError(code: "dns.server.state", message: "start: the server was already started; make a new DNSServer")
            }
            state = .starting
        }
        let ownGroup: MultiThreadedEventLoopGroup?
        let group: any EventLoopGroup
        if let eventLoopGroup {
            (ownGroup, group) = (nil, eventLoopGroup)
        } else {
            let made = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            (ownGroup, group) = (made, made)
        }
        let attempts = configuration.port == 0 ? 8 : 1
        var lastError: (any Error)? = nil
        for _ in 0..<attempts {
            var udp: [any Channel] = []
            do {
                var port = configuration.port
                for _ in 0..<max(1, configuration.udpSocketCount) {
                    let channel = try await bindUDP(port: port, group: group)
                    udp.append(channel)
                    port = channel.localAddress?.port ?? port
                }
                let tcp = try await bindTCP(port: port, group: group)
                let running = state.withLock { state in
                    guard case .starting = state else { return false }
                    state = .running(udp: udp, tcp: tcp, ownGroup: ownGroup)
                    return true
                }
                if running { return }
                // Stopped while binding: undo, as stop found nothing to close.
                for channel in udp + [tcp] { try? await channel.close() }
                try? await ownGroup?.shutdownGracefully()
                throw DNSServerError(code: "dns.server.state", message: "start: the server was stopped while starting")
            } catch let error as DNSServerError where error.code == "dns.server.state" {
                throw error
            } catch {
                lastError = error
                for channel in udp { try? await channel.close() }
            }
        }
        try? await ownGroup?.shutdownGracefully()
        state.withLock { $0 = .stopped }  // A failed start leaves a server that cannot start again.
        throw lastError ?? DNSServerError(code: "dns.bind", message: "bind: no attempt made")
    }

    /// Closes every channel (listeners and open TCP connections) and, when the server made its
    /// own event loop group, shuts it down.
    public func stop() async throws {
        let (channels, ownGroup): ([any Channel], MultiThreadedEventLoopGroup?) = state.withLock { state in
            defer { state = .stopped }
            guard case .running(let udp, let tcp, let ownGroup) = state else { return ([], nil) }
            return (udp + [tcp], ownGroup)
        }
        // Listeners first, so that nothing new is accepted; then the open connections.
        for channel in channels {
            try? await channel.close()
        }
        let connections = shared.connections.withLock { Array($0.values) }
        for connection in connections {
            try? await connection.close()
        }
        try await ownGroup?.shutdownGracefully()
    }

    private func nextRandom() -> DNSRandom {
        let index = handlerCount.wrappingAdd(1, ordering: .relaxed).oldValue
        if let seed = configuration.shuffleSeed {
            return DNSRandom(seed: seed &+ index &* 0x9E37_79B9_7F4A_7C15)
        }
        var system = SystemRandomNumberGenerator()
        return DNSRandom(seed: system.next())
    }

    /// Datagrams read per recvmmsg call, and per wakeup: one call each (`maxMessagesPerRead` 1).
    /// NIO calls recvmmsg again until one finds nothing, and at a steady rate (3 queries per
    /// wakeup at 30,000 per second) every wakeup ended in a call that found nothing: 0.31 calls
    /// per query. With one call per wakeup, datagrams left over wake the level-triggered epoll
    /// again at once: half the recvmmsg calls, and CPU per query at 30,000/s down about 4% (stop 37,
    /// the two builds alternated, 6 runs each: median 7.33 against 7.60 us, 1.09x against 1.14x
    /// dnsmasq's). Under saturation a wakeup found 19 queries on average, hence 32 per call.
    private static let udpReadBurst = 32

    /// SO_REUSEPORT, which NIO does not name: 15 in Linux's asm-generic/socket.h, 0x200 in
    /// Darwin's sys/socket.h (spelled out to keep this target off Glibc).
    #if os(Linux)
    private static let soReusePort = NIOBSDSocket.Option(rawValue: 15)
    #else
    private static let soReusePort = NIOBSDSocket.Option(rawValue: 0x200)
    #endif

    private func bindUDP(port: Int, group: any EventLoopGroup) async throws -> any Channel {
        let shared = self.shared
        let reusePort = configuration.udpSocketCount > 1
        // No SO_REUSEADDR: on Linux it lets a second UDP socket bind the same address and port
        // and take our queries, without an error to either. UDP has no TIME_WAIT to skip.
        // A wildcard address: a socket made here, whose descriptor the handler sends from.
        let wildcard = Self.wildcardAddress(configuration.host, port: port)
        var wildcardSocket: Int32?
        if let wildcard {
            let made = wildcard.withSockAddr { fl_dgram_bind_wildcard($0, socklen_t($1), reusePort ? 1 : 0) }
            guard made >= 0 else {
                throw DNSServerError(
                    code: "dns.bind", message: "bind UDP \(configuration.host):\(port): \(IOError(errnoCode: -made, reason: "bind"))")
            }
            wildcardSocket = made
        }
        let bootstrap = DatagramBootstrap(group: group)
            .channelOption(.socketOption(Self.soReusePort), value: reusePort ? 1 : 0)
            // Read a burst of datagrams per wakeup with recvmmsg; answers go out per burst too.
            // NIO cuts one receive buffer into equal slices, one per datagram, so the buffer must
            // hold a whole query per slice: the default 2048 bytes would cut queries at 128.
            .channelOption(.datagramVectorReadMessageCount, value: Self.udpReadBurst)
            .channelOption(
                .recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: Self.udpReadBurst * DNSWireLimit.udpQueryBytes))
            .channelOption(.maxMessagesPerRead, value: 1)
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        DNSUDPHandler(shared: shared, random: self.nextRandom(), wildcardSocket: wildcardSocket))
                }
            }
        do {
            guard let wildcardSocket else { return try await bootstrap.bind(host: configuration.host, port: port).get() }
            // NIO is to report each datagram's destination from the first one on: an option set
            // before the channel reads (the socket asks the kernel for it already). Only here:
            // NIO takes it only for a socket already bound. The socket is the channel's from
            // here on, closed with it.
            return try await bootstrap.channelOption(.receivePacketInfo, value: true).withBoundSocket(wildcardSocket).get()
        } catch {
            throw DNSServerError(code: "dns.bind", message: "bind UDP \(configuration.host):\(port): \(error)", cause: error)
        }
    }

    /// `host`:`port` when `host` is 0.0.0.0 or :: (every address of the host), else nil.
    private static func wildcardAddress(_ host: String, port: Int) -> SocketAddress? {
        let address: SocketAddress
        do {
            address = try SocketAddress(ipAddress: host, port: port)
        } catch {
            return nil  // A name: NIO's bind resolves it, and says what is wrong with it.
        }
        return address.ipAddress == "0.0.0.0" || address.ipAddress == "::" ? address : nil
    }

    private func bindTCP(port: Int, group: any EventLoopGroup) async throws -> any Channel {
        let shared = self.shared
        let maxConnections = configuration.maxTCPConnections
        let maxQueryBytes = configuration.maxTCPQueryBytes
        let idleTimeout = TimeAmount(configuration.tcpIdleTimeout)
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .pausingAcceptOnResourceErrors()
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark, value: .init(low: 16 * 1024, high: 64 * 1024))
            .childChannelInitializer { [self] channel in
                let key = ObjectIdentifier(channel)
                let admitted = shared.connections.withLock { connections in
                    guard connections.count < maxConnections else { return false }
                    connections[key] = channel
                    return true
                }
                guard admitted else {
                    shared.counters.recordRefusedConnection()
                    return channel.close()
                }
                channel.closeFuture.whenComplete { _ in
                    _ = shared.connections.withLock { $0.removeValue(forKey: key) }
                }
                return channel.eventLoop.makeCompletedFuture {
                    let operations = channel.pipeline.syncOperations
                    try operations.addHandler(
                        ByteToMessageHandler(DNSTCPFrameDecoder(maxMessageBytes: maxQueryBytes), maximumBufferSize: 2 + maxQueryBytes + 65536))
                    try operations.addHandler(DNSTCPHandler(shared: shared, random: self.nextRandom(), idleTimeout: idleTimeout))
                }
            }
        do {
            return try await bootstrap.bind(host: configuration.host, port: port).get()
        } catch {
            throw DNSServerError(code: "dns.bind", message: "bind TCP \(configuration.host):\(port): \(error)", cause: error)
        }
    }
}

/// A failure of the server: a stable code, a message that says what to do, the underlying error.
public struct DNSServerError: Error, Sendable, CustomStringConvertible {
    /// A stable code: `dns.bind`, `dns.server.state`.
    public var code: String
    /// What failed, naming the address.
    public var message: String
    /// The error below, if any.
    public var cause: (any Error & Sendable)?

    init(code: String, message: String, cause: (any Error)? = nil) {
        self.code = code
        self.message = message
        self.cause = cause.map { "\($0)" }.map(DNSServerErrorCause.init)
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}

/// The text of an underlying error that need not itself be Sendable.
struct DNSServerErrorCause: Error, Sendable, CustomStringConvertible {
    var description: String
}
