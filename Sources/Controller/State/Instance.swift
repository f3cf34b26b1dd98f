import Manifest

/// Identifies an instance: `<application>.<service>.<index>-<serial>`, unique for the life of
/// the cluster (the serial never repeats), so a replacement is never mistaken for the original.
public typealias InstanceID = String

/// What the cluster wants an instance to do.
public enum DesiredState: String, Sendable, Hashable, Codable {
    case run
    case stop
}

/// What the instance's node last reported about it.
public enum InstanceStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// Placed, not yet started by its node.
    case pending
    /// Being set up (root filesystem, cgroup, spawn) or waiting for a restart.
    case starting
    /// Executed; not (yet) passing its health check.
    case running
    /// Ready per the service's readiness mode and passing its health check.
    case healthy
    /// Running, but failing its health check.
    case unhealthy
    /// Exited successfully and will not run again (a batch job, restart policy `never`).
    case completed
    /// Exited and will not run again: restart policy gave up, or a batch job failed.
    case failed
    /// Stopped because the cluster asked it to.
    case stopped
    /// Its node went down; nobody knows whether it still runs. Set by the state machine
    /// itself, as Nomad's "lost" client status.
    case lost

    /// Whether the instance's process is gone for good.
    public var isTerminal: Bool {
        switch self {
        case .completed, .failed, .stopped: true
        case .pending, .starting, .running, .healthy, .unhealthy, .lost: false
        }
    }
}

/// How an instance's process ended.
public struct ExitInfo: Sendable, Hashable, Codable {
    /// The exit status, when it exited.
    public var code: Int32?
    /// The signal that killed it, when one did.
    public var signal: Int32?
    /// Killed by the kernel's OOM killer in its cgroup.
    public var oomKilled: Bool

    /// How a process ended, as its supervisor saw it.
    public init(code: Int32? = nil, signal: Int32? = nil, oomKilled: Bool = false) {
        self.code = code
        self.signal = signal
        self.oomKilled = oomKilled
    }
}

/// One line of an instance's recent history, for `deployctl describe`.
public struct InstanceEvent: Sendable, Hashable, Codable {
    /// The time of the entry that recorded it.
    public var time: Timestamp
    /// The status it moved to.
    public var status: InstanceStatus
    /// What happened, for people.
    public var message: String

    /// An event as the state machine records it.
    public init(time: Timestamp, status: InstanceStatus, message: String) {
        self.time = time
        self.status = status
        self.message = message
    }
}

/// A port number given to an instance, by the port's name in the manifest.
public struct AssignedPort: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The port's name in the manifest.
    public var name: String
    /// The number on the node.
    public var number: Int
    /// TCP or UDP.
    public var `protocol`: PortProtocol

    /// A port assignment.
    public init(name: String, number: Int, protocol: PortProtocol = .tcp) {
        self.name = name
        self.number = number
        self.protocol = `protocol`
    }

    public var description: String { "\(name)=\(number)/\(`protocol`.rawValue)" }

    private enum CodingKeys: String, CodingKey { case name, number, `protocol` }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        name = try container.decode(String.self, forKey: .name)
        number = try container.decode(Int.self, forKey: .number)
        let text = try container.decode(String.self, forKey: .protocol)
        guard let value = PortProtocol(rawValue: text) else {
            throw DecodingError.dataCorruptedError(forKey: .protocol, in: container, debugDescription: "unknown protocol \(text)")
        }
        `protocol` = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(name, forKey: .name)
        try container.encode(number, forKey: .number)
        try container.encode(`protocol`.rawValue, forKey: .protocol)
    }
}

/// One running (or once-running) copy of a service on a node.
public struct InstanceRecord: Sendable, Hashable, Codable {
    /// Unique for the life of the cluster.
    public var id: InstanceID
    /// The service it is an instance of.
    public var service: ServiceKey
    /// The replica slot, 0..<replicas: scale-down stops the highest first, and a replacement
    /// takes the slot of the instance it replaces.
    public var index: Int
    /// The application revision whose manifest describes this instance. Bumped in place when
    /// a new revision leaves the service's process unchanged (see ``ApplicationDiff``).
    public var revision: UInt64
    /// The node it runs on.
    public var node: String
    /// Every port of its manifest, with the number it got on its node.
    public var ports: [AssignedPort]
    /// Copied from the manifest at placement, so that a node's usage sums without manifests.
    public var reservedCPUMillicores: Int
    /// Memory set aside for it on its node.
    public var reservedMemoryBytes: Int64
    /// Whether the cluster wants it running.
    public var desiredState: DesiredState
    /// Why the cluster asked it to stop.
    public var stopReason: String?
    /// How long its node waits between the stop and the stop signal: the service's
    /// `discovery.drainDelay` when the instance was passing in the catalog as it was told to
    /// stop (so was taken out of it by that entry), else nil.
    public var drainDelay: Duration?
    /// What its node last reported (or `lost`).
    public var status: InstanceStatus
    /// How it finally ended, once it has (`completed`, `failed`, `stopped`).
    public var exit: ExitInfo?
    /// Its main process's pid on its node, as last reported; nil while no process runs (or
    /// none was reported).
    public var mainPID: Int32?
    /// Restarts by its node's supervisor over its life, as last reported.
    public var restartCount: Int = 0
    /// The most recent exit of its process, kept across restarts (``exit`` is the final one).
    public var lastExit: ExitInfo?
    /// The most recent events, oldest first, at most ``InstanceRecord/eventLimit``.
    public var events: [InstanceEvent]
    /// The log index of the plan that placed it.
    public var createdIndex: UInt64
    /// The proposer's time of that plan.
    public var createdAt: Timestamp
    /// The log index of its last change.
    public var modifiedIndex: UInt64
    /// A rollout's replacement of a running instance, kept out of the catalog's passing
    /// instances until it has been ready for its service's `minHealthyTime`: then the leader
    /// clears it, in the plan that stops the instance it replaces.
    public var awaitsMinHealthyTime = false

    /// Events kept per instance: enough to explain a crash loop, small enough for snapshots.
    public static let eventLimit = 10

    /// Wanted running and not known gone: what occupies a slot and reserves node resources.
    public var isLive: Bool {
        desiredState == .run && !status.isTerminal
    }

    /// Takes the process facts of a report and returns whether any changed. A nil pid means no
    /// process runs; a restart count or last exit the report does not know (nil, e.g. in an
    /// entry written before they were reported) leaves the record's as it is.
    mutating func recordProcess(from report: InstanceStatusReport) -> Bool {
        var changed = false
        if mainPID != report.mainPID {
            mainPID = report.mainPID
            changed = true
        }
        if let count = report.restartCount, count != restartCount {
            restartCount = count
            changed = true
        }
        if let exit = report.lastExit, exit != lastExit {
            lastExit = exit
            changed = true
        }
        return changed
    }

    mutating func record(_ status: InstanceStatus, _ message: String, at time: Timestamp) {
        self.status = status
        events.append(InstanceEvent(time: time, status: status, message: message))
        if events.count > Self.eventLimit { events.removeFirst(events.count - Self.eventLimit) }
    }
}
