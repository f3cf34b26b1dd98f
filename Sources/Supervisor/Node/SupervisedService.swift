import Manifest

/// One instance to keep alive: how to launch it, and the policies around it.
public struct SupervisedService: Sendable, Hashable {
    /// The service's name (journal fields, events).
    public var serviceName: String
    /// The launch; its `instanceID` names the instance. Output, NOTIFY_SOCKET and the notify
    /// mount are filled in by the supervisor.
    public var launch: LaunchSpec
    /// Restart, health, readiness, watchdog, stop.
    public var policy: SupervisionPolicy
    /// Port numbers by port name, for HTTP and TCP checks, and the ports published on the node
    /// for a private network.
    public var ports: [String: Int]
    /// Services called through the node's local proxy.
    public var upstreams: [Upstream]
    /// Log rotation: the size at which a file is rotated, and the files kept.
    public var logMaxFileBytes: Int
    public var logMaxFiles: Int

    /// The instance's id.
    public var instanceID: String { launch.instanceID }

    /// Whether each process gets a network namespace of its own (`network.mode` `private`):
    /// then its ports are published on the node and its HTTP and TCP checks run inside it.
    public var hasPrivateNetwork: Bool { launch.namespaces.contains(.network) }

    /// A service from its parts; the log defaults are the manifest's (10 MiB, 5 files).
    public init(serviceName: String, launch: LaunchSpec, policy: SupervisionPolicy = SupervisionPolicy(),
                ports: [String: Int] = [:], upstreams: [Upstream] = [], logMaxFileBytes: Int = 10 << 20, logMaxFiles: Int = 5)
    {
        self.upstreams = upstreams
        self.serviceName = serviceName
        self.launch = launch
        self.policy = policy
        self.ports = ports
        self.logMaxFileBytes = logMaxFileBytes
        self.logMaxFiles = logMaxFiles
    }

    /// One instance of a manifest's service.
    public init(service: Service, instance: InstanceFacts) {
        var ports: [String: Int] = [:]
        for port in service.network.ports {
            if let number = instance.assignedPorts[port.name] ?? port.number { ports[port.name] = number }
        }
        self.init(serviceName: service.name, launch: LaunchSpec(service: service, instance: instance),
                  policy: SupervisionPolicy(service: service), ports: ports, upstreams: service.upstreams,
                  logMaxFileBytes: Int(max(service.logs.maxSize.bytes, 4096)), logMaxFiles: service.logs.files)
    }
}

/// An instance as its supervisor sees it now.
public struct InstanceStatus: Sendable, Hashable {
    public var instanceID: String
    public var phase: InstancePhase
    /// The main process, while there is one.
    public var pid: Int32?
    /// Ready for traffic (by the service's readiness mode).
    public var isReady: Bool
    /// The health check's status, while running with one.
    public var health: HealthCheckStateMachine.Status?
    /// The last `STATUS=` the service sent.
    public var statusText: String?
    /// Processes launched over the instance's life.
    public var launchCount: Int
    /// Restarts over the instance's life.
    public var restartCount: Int
    /// Why the last process ended.
    public var lastExit: ExitReason?
    /// The running process was adopted from a previous supervisor, not launched by this one.
    public var adopted: Bool
    /// The last health check's outcome.
    public var lastCheck: ProbeOutcome?
    /// Health checks failed in a row that count towards `unhealthyThreshold` (Docker's
    /// `FailingStreak`): an operator sees an instance about to be restarted before it is.
    public var consecutiveCheckFailures: Int = 0

    /// Whether the instance has reached an end: stopped, failed or completed.
    public var isFinished: Bool {
        switch phase {
        case .stopped, .failed, .completed: return true
        default: return false
        }
    }
}
