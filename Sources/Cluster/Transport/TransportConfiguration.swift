import NIOCore
import NIOSSL
import Raft

/// Another member of the cluster, as the transport reaches it.
public struct ClusterPeer: Sendable, Hashable {
    /// Its Raft id.
    public var id: NodeID
    /// Its node name: the name its certificate must carry.
    public var name: String
    /// Where its cluster port listens.
    public var host: String
    public var port: Int

    public init(id: NodeID, name: String, host: String, port: Int) {
        self.id = id
        self.name = name
        self.host = host
        self.port = port
    }
}

extension ClusterTLSMaterial {
    /// Peers present a certificate and verify the other's against the cluster CA only (not the
    /// system's roots): a connection with any other certificate ends in the handshake, before
    /// any frame is read. Names are checked after it, against the hello and the peer table.
    func context(server: Bool, applicationProtocols clientProtocols: [String] = [ClusterProtocol.peer]) throws -> NIOSSLContext {
        var configuration =
            server
            ? TLSConfiguration.makeServerConfiguration(
                certificateChain: certificateChain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
            : TLSConfiguration.makeClientConfiguration()
        configuration.certificateChain = certificateChain.map { .certificate($0) }
        configuration.privateKey = .privateKey(privateKey)
        configuration.trustRoots = .certificates(trustRoots)
        // The server verifies a client certificate when one is presented (a peer must present
        // one: `PeerChannelHandler` refuses a peer connection without), but lets a joining
        // agent, which has none yet, in for the join protocol alone.
        configuration.certificateVerification = server ? .optionalVerification : .noHostnameVerification
        configuration.applicationProtocols = server ? ClusterProtocol.all : clientProtocols
        configuration.minimumTLSVersion = .tlsv13
        return try NIOSSLContext(configuration: configuration)
    }
}


/// How the transport behaves; the defaults suit a LAN.
public struct TransportConfiguration: Sendable {
    /// This agent's Raft id and node name (its certificate's).
    public var localID: NodeID
    public var localName: String
    /// Where to listen; port 0 picks a free one (`ClusterTransport.start` answers which).
    public var listenHost: String
    public var listenPort: Int
    public var tls: ClusterTLSMaterial
    /// The full node-certificate checks (usages, validity, the name), after the handshake.
    public var verifier: ClusterPeerVerifier
    /// The largest frame payload read or written. Raft's own limits (append batches, snapshot
    /// chunks) keep real frames far below it.
    public var maximumFramePayloadBytes: Int
    /// What may wait for one peer: past either bound new messages to it are dropped (Raft
    /// resends what matters), so a slow or dead peer costs a fixed amount of memory.
    public var maximumQueuedMessages: Int
    public var maximumQueuedBytes: Int
    /// Reconnection: the first retry after `reconnectInitial`, doubling to `reconnectMaximum`,
    /// each delay scaled by a random factor in 0.5...1.5 so that peers do not retry in step.
    public var reconnectInitial: Duration
    public var reconnectMaximum: Duration
    /// How long a dial may take, TLS handshake included.
    public var connectTimeout: Duration
    /// How long sent data may stay unacknowledged before the connection is given up
    /// (``ClusterTransport/unacknowledgedTimeout``): a few Raft heartbeats, longer than any
    /// healthy round trip.
    public var unacknowledgedTimeout: Duration = .seconds(5)
    /// An accepted connection until it has shown who it is (a certificate of the cluster's CA
    /// in the handshake, or a join request, a few kilobytes), which TLS does not require since
    /// a joiner has no certificate yet: its largest frame (until a member's hello), how long it
    /// has from the accept, and how many connections without a certificate may be open at once
    /// after their handshake. Together they bound what a stranger on the network can make an
    /// agent hold to 128 such connections of at most 64 KiB of frame each, each refused 10 s
    /// after its accept (TLS then waits up to its shutdown timeout for the close before the
    /// place is free). One stranger can still take every place and keep joiners out, not members.
    public var maximumUnidentifiedFramePayloadBytes = 64 << 10
    public var identificationTimeout: Duration = .seconds(10)
    public var maximumUnidentifiedConnections = 128
    /// Dial every listed peer, not only those with a higher id: a client agent, which servers
    /// never list and never dial, keeps its own connections to them.
    public var dialsEveryPeer = false

    public init(
        localID: NodeID, localName: String, listenHost: String = "0.0.0.0", listenPort: Int, tls: ClusterTLSMaterial,
        verifier: ClusterPeerVerifier, maximumFramePayloadBytes: Int = 64 << 20, maximumQueuedMessages: Int = 4096,
        maximumQueuedBytes: Int = 64 << 20, reconnectInitial: Duration = .milliseconds(50), reconnectMaximum: Duration = .seconds(2),
        connectTimeout: Duration = .seconds(3)
    ) {
        self.localID = localID
        self.localName = localName
        self.listenHost = listenHost
        self.listenPort = listenPort
        self.tls = tls
        self.verifier = verifier
        self.maximumFramePayloadBytes = maximumFramePayloadBytes
        self.maximumQueuedMessages = maximumQueuedMessages
        self.maximumQueuedBytes = maximumQueuedBytes
        self.reconnectInitial = reconnectInitial
        self.reconnectMaximum = reconnectMaximum
        self.connectTimeout = connectTimeout
    }
}
