/// The wire types of agentd's HTTP API (`/v1`), shared by the agent and deployctl. JSON in and
/// out; times are Unix milliseconds; every list is sorted so that output is stable.

/// A port an instance got.
public struct PortInfo: Codable, Sendable, Hashable {
    public var name: String
    public var number: Int
    public var `protocol`: String

    public init(name: String, number: Int, protocol: String) {
        self.name = name
        self.number = number
        self.protocol = `protocol`
    }
}

/// How an instance ended.
public struct ExitInfo: Codable, Sendable, Hashable {
    public var code: Int32?
    public var signal: Int32?
    public var oomKilled: Bool

    public init(code: Int32?, signal: Int32?, oomKilled: Bool) {
        self.code = code
        self.signal = signal
        self.oomKilled = oomKilled
    }
}

/// Something that happened to an instance.
public struct InstanceEventInfo: Codable, Sendable, Hashable {
    public var time: Int64
    public var status: String
    public var message: String

    public init(time: Int64, status: String, message: String) {
        self.time = time
        self.status = status
        self.message = message
    }
}

/// One instance of a service.
public struct InstanceInfo: Codable, Sendable, Hashable {
    public var id: String
    public var application: String
    public var service: String
    public var index: Int
    public var revision: UInt64
    public var node: String
    public var ports: [PortInfo]
    /// `run` or `stop`.
    public var desired: String
    /// pending, starting, running, healthy, unhealthy, completed, failed, stopped, lost.
    public var status: String
    public var exit: ExitInfo?
    public var events: [InstanceEventInfo]
    /// The log index that created it.
    public var createdIndex: UInt64

    public init(
        id: String, application: String, service: String, index: Int, revision: UInt64, node: String, ports: [PortInfo], desired: String,
        status: String, exit: ExitInfo?, events: [InstanceEventInfo], createdIndex: UInt64
    ) {
        self.id = id
        self.application = application
        self.service = service
        self.index = index
        self.revision = revision
        self.node = node
        self.ports = ports
        self.desired = desired
        self.status = status
        self.exit = exit
        self.events = events
        self.createdIndex = createdIndex
    }
}

/// A service's desired and actual state.
public struct ServiceStatus: Codable, Sendable, Hashable {
    public var name: String
    /// The application revision its instances should run.
    public var revision: UInt64
    public var replicas: Int
    /// Instances of the current revision that are up (healthy, or running without a health check).
    public var ready: Int
    /// Instances that should run, by status.
    public var counts: [String: Int]
    /// Why some instances could not be placed, if any.
    public var unplaced: [String]
    /// A one-shot service (restart policy never).
    public var isBatch: Bool

    public init(name: String, revision: UInt64, replicas: Int, ready: Int, counts: [String: Int], unplaced: [String], isBatch: Bool) {
        self.name = name
        self.revision = revision
        self.replicas = replicas
        self.ready = ready
        self.counts = counts
        self.unplaced = unplaced
        self.isBatch = isBatch
    }
}

/// One revision of an application's manifest.
public struct RevisionInfo: Codable, Sendable, Hashable {
    public var number: UInt64
    public var appliedIndex: UInt64
    public var appliedAt: Int64

    public init(number: UInt64, appliedIndex: UInt64, appliedAt: Int64) {
        self.number = number
        self.appliedIndex = appliedIndex
        self.appliedAt = appliedAt
    }
}

/// An application: its services' status, and with `?detail=true` its revisions and manifest.
public struct ApplicationInfo: Codable, Sendable, Hashable {
    public var name: String
    public var revision: UInt64
    public var description: String
    public var services: [ServiceStatus]
    public var revisions: [RevisionInfo]?
    /// The current manifest, as applied.
    public var manifest: String?

    public init(name: String, revision: UInt64, description: String, services: [ServiceStatus], revisions: [RevisionInfo]? = nil, manifest: String? = nil) {
        self.name = name
        self.revision = revision
        self.description = description
        self.services = services
        self.revisions = revisions
        self.manifest = manifest
    }
}

/// What applying a manifest changes (or would change, with `dryRun`).
public struct ApplyResult: Codable, Sendable, Hashable {
    public var application: String
    /// The revision after the apply (unchanged when nothing changed).
    public var revision: UInt64
    public var created: [String]
    public var replaced: [String]
    public var updatedInPlace: [String]
    public var removed: [String]
    public var unchanged: [String]
    public var dryRun: Bool
    /// The log index of the apply; watch from here.
    public var index: UInt64

    public init(
        application: String, revision: UInt64, created: [String], replaced: [String], updatedInPlace: [String], removed: [String],
        unchanged: [String], dryRun: Bool, index: UInt64
    ) {
        self.application = application
        self.revision = revision
        self.created = created
        self.replaced = replaced
        self.updatedInPlace = updatedInPlace
        self.removed = removed
        self.unchanged = unchanged
        self.dryRun = dryRun
        self.index = index
    }

    /// Nothing would change.
    public var isNoChange: Bool { created.isEmpty && replaced.isEmpty && updatedInPlace.isEmpty && removed.isEmpty }
}

/// A node of the cluster.
public struct NodeInfo: Codable, Sendable, Hashable {
    public var name: String
    public var address: String
    /// ready, down or draining.
    public var status: String
    public var labels: [String: String]
    public var os: String
    public var arch: String
    public var kernel: String
    public var cpus: Int
    public var memoryBytes: Int64
    public var capacityCPUMillicores: Int
    public var capacityMemoryBytes: Int64
    public var reservedCPUMillicores: Int
    public var reservedMemoryBytes: Int64
    public var instances: Int
    public var lastHeartbeat: Int64

    public init(
        name: String, address: String, status: String, labels: [String: String], os: String, arch: String, kernel: String, cpus: Int,
        memoryBytes: Int64, capacityCPUMillicores: Int, capacityMemoryBytes: Int64, reservedCPUMillicores: Int,
        reservedMemoryBytes: Int64, instances: Int, lastHeartbeat: Int64
    ) {
        self.name = name
        self.address = address
        self.status = status
        self.labels = labels
        self.os = os
        self.arch = arch
        self.kernel = kernel
        self.cpus = cpus
        self.memoryBytes = memoryBytes
        self.capacityCPUMillicores = capacityCPUMillicores
        self.capacityMemoryBytes = capacityMemoryBytes
        self.reservedCPUMillicores = reservedCPUMillicores
        self.reservedMemoryBytes = reservedMemoryBytes
        self.instances = instances
        self.lastHeartbeat = lastHeartbeat
    }
}

/// A change in the cluster, as the event stream and `deployctl events` show it.
public struct ClusterEvent: Codable, Sendable, Hashable {
    public var index: UInt64
    public var time: Int64
    /// application.applied, application.deleted, service.scaled, service.restarted, node.updated,
    /// plan.committed, instance.status.
    public var kind: String
    public var application: String?
    public var service: String?
    public var instance: String?
    public var node: String?
    public var message: String

    public init(index: UInt64, time: Int64, kind: String, application: String? = nil, service: String? = nil, instance: String? = nil, node: String? = nil, message: String) {
        self.index = index
        self.time = time
        self.kind = kind
        self.application = application
        self.service = service
        self.instance = instance
        self.node = node
        self.message = message
    }
}

/// `GET /v1/status`: the whole cluster at a glance.
public struct ClusterStatus: Codable, Sendable, Hashable {
    /// The state's index: pass it as `?index=` to wait for the next change.
    public var index: UInt64
    public var leader: String?
    public var term: UInt64
    public var applications: [ApplicationInfo]
    public var nodes: [NodeInfo]

    public init(index: UInt64, leader: String?, term: UInt64, applications: [ApplicationInfo], nodes: [NodeInfo]) {
        self.index = index
        self.leader = leader
        self.term = term
        self.applications = applications
        self.nodes = nodes
    }
}

/// `POST …/scale`.
public struct ScaleRequest: Codable, Sendable, Hashable {
    public var replicas: Int
    /// Check-and-set: refused unless the application is at this revision.
    public var revision: UInt64?

    public init(replicas: Int, revision: UInt64? = nil) {
        self.replicas = replicas
        self.revision = revision
    }
}

/// `GET /v1/version`.
public struct VersionInfo: Codable, Sendable, Hashable {
    public var version: String
    public var api: String
    public var node: String

    public init(version: String, api: String, node: String) {
        self.version = version
        self.api = api
        self.node = node
    }
}

/// One line of an instance's output.
public struct LogLine: Codable, Sendable, Hashable {
    public var time: Int64
    /// stdout or stderr.
    public var stream: String
    public var text: String

    public init(time: Int64, stream: String, text: String) {
        self.time = time
        self.stream = stream
        self.text = text
    }
}

/// `GET /v1/applications/{name}/services/{service}`.
public struct ServiceDescription: Codable, Sendable, Hashable {
    public var application: String
    public var status: ServiceStatus
    /// The service's part of the current manifest, every default written out.
    public var manifest: String
    public var instances: [InstanceInfo]

    public init(application: String, status: ServiceStatus, manifest: String, instances: [InstanceInfo]) {
        self.application = application
        self.status = status
        self.manifest = manifest
        self.instances = instances
    }
}

/// The answer to a command that has no richer result.
public struct CommandOutcome: Codable, Sendable, Hashable {
    public var message: String
    public var index: UInt64

    public init(message: String, index: UInt64) {
        self.message = message
        self.index = index
    }
}
