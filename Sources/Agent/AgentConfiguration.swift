import ImagePull
import Controller
import Supervisor

/// How an agent runs: from `agentd`'s flags and configuration file.
public struct AgentConfiguration: Sendable {
    /// This node's name in the cluster.
    public var nodeName: String
    /// Where the Raft log, snapshots and instance state live.
    public var stateDirectory: String
    /// The root-only unix socket of the HTTP API.
    public var apiSocketPath: String
    /// Optional TCP listener of the HTTP API (host and port), which needs `apiToken`.
    public var apiTCPHost: String?
    public var apiTCPPort: Int?
    public var apiToken: String?
    /// Node labels, matched by `label.<key>` placement constraints.
    public var labels: [String: String]
    /// Dynamic ports handed to instances on this node.
    public var portRange: PortRange
    /// How other agents reach this one.
    public var advertiseAddress: String
    /// How often the node heartbeats, and after how long without one it is marked down.
    public var heartbeatInterval: Duration
    public var nodeDownTimeout: Duration
    /// The Raft tick: an election timeout is 8–16 of them (400–800 ms at the default 50 ms).
    public var raftTick: Duration
    /// The parent cgroup of every instance on this node.
    public var cgroupParent: String
    /// Development mode: one node that is the only voter, everything on loopback.
    public var dev: Bool
    /// The longest a blocking query waits and a stream (events, log follow) lasts before its
    /// client resumes (Consul's `max_query_time`).
    public var maxQueryWait: Duration
    /// A server of a cluster (`--bootstrap` or `--join`); nil for a single node.
    public var cluster: ClusterSettings?
    /// Where the catalog is answered over DNS; nil serves no DNS.
    public var dns: DNSSettings?
    /// How this node reaches image registries: its extra CA, its credentials, its platform.
    public var registryAccess = RegistryAccess()
    /// How long an image no instance uses stays on the node.
    public var imageGracePeriod: Duration = .seconds(3600)
    /// The nice value of the thread forwarding published ports and upstreams (see
    /// `NodeSupervisor.Configuration.forwardingNice`).
    public var forwardingNice: Int32 = NodeSupervisor.Configuration.defaultForwardingNice

    public init(
        nodeName: String, stateDirectory: String, apiSocketPath: String = "/run/flotilla/api.sock", apiTCPHost: String? = nil, apiTCPPort: Int? = nil,
        apiToken: String? = nil, labels: [String: String] = [:], portRange: PortRange = .defaultDynamic, advertiseAddress: String = "127.0.0.1:4647",
        heartbeatInterval: Duration = .seconds(2), nodeDownTimeout: Duration = .seconds(15), raftTick: Duration = .milliseconds(50),
        cgroupParent: String = "flotilla", dev: Bool = false, maxQueryWait: Duration = .seconds(300), cluster: ClusterSettings? = nil,
        dns: DNSSettings? = nil
    ) {
        self.cluster = cluster
        self.dns = dns
        self.nodeName = nodeName
        self.stateDirectory = stateDirectory
        self.apiSocketPath = apiSocketPath
        self.apiTCPHost = apiTCPHost
        self.apiTCPPort = apiTCPPort
        self.apiToken = apiToken
        self.labels = labels
        self.portRange = portRange
        self.advertiseAddress = advertiseAddress
        self.heartbeatInterval = heartbeatInterval
        self.nodeDownTimeout = nodeDownTimeout
        self.raftTick = raftTick
        self.cgroupParent = cgroupParent
        self.dev = dev
        self.maxQueryWait = maxQueryWait
    }
}
