import Manifest

/// Names one service of one application.
public struct ServiceKey: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    /// The application's name.
    public var application: String
    /// The service's name within it.
    public var service: String

    /// The key of `service` in `application`.
    public init(_ application: String, _ service: String) {
        self.application = application
        self.service = service
    }

    public static func < (lhs: ServiceKey, rhs: ServiceKey) -> Bool {
        (lhs.application, lhs.service) < (rhs.application, rhs.service)
    }

    public var description: String { "\(application).\(service)" }
}

/// One applied version of an application's manifest.
public struct Revision: Sendable, Hashable, Codable {
    /// 1 for the first apply, one more for each apply that changed the manifest.
    public var number: UInt64
    /// The manifest as compact canonical JSON (every default written out), which decodes to
    /// the same ``Application``; what snapshots carry and what `deployctl get` shows.
    public var manifestJSON: String
    /// The log index of the entry that applied it.
    public var appliedIndex: UInt64
    /// The proposer's time of that entry.
    public var appliedAt: Timestamp
    /// When its rollout succeeded, if it ever did: what `undo` may go back to.
    public var rolledOutAt: Timestamp?
    /// How it came to be when not by an apply of a manifest: "reverts revision 3", "undo to
    /// revision 1".
    public var origin: String?
}

/// What the cluster keeps per service besides its manifest: the operator's imperative changes.
public struct ServiceRecord: Sendable, Hashable, Codable {
    /// The desired instance count: the manifest's `replicas` at each apply, then `scale`.
    public var replicas: Int
    /// The log index of the last `restart`: instances created before it are replaced. 0 = never.
    public var restartIndex: UInt64
    /// Why the scheduler could not place some instances at its last evaluation, if it could not.
    public var unplaced: [UnplacedInstances]
    /// The log index of the last change of a key the service reads (its manifest's `kv`):
    /// instances created before it are replaced, as after a restart. 0 = never.
    public var keyChangeIndex: UInt64

    /// A service record; new services start from their manifest's count.
    public init(replicas: Int, restartIndex: UInt64 = 0, unplaced: [UnplacedInstances] = [], keyChangeIndex: UInt64 = 0) {
        self.replicas = replicas
        self.restartIndex = restartIndex
        self.unplaced = unplaced
        self.keyChangeIndex = keyChangeIndex
    }

    private enum CodingKeys: String, CodingKey { case replicas, restartIndex, unplaced, keyChangeIndex }

    /// Snapshots from before `keyChangeIndex` read it as 0.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        replicas = try container.decode(Int.self, forKey: .replicas)
        restartIndex = try container.decode(UInt64.self, forKey: .restartIndex)
        unplaced = try container.decode([UnplacedInstances].self, forKey: .unplaced)
        keyChangeIndex = try container.decodeIfPresent(UInt64.self, forKey: .keyChangeIndex) ?? 0
    }

    /// Instances created before this are outdated (a restart, or a key it reads changed).
    public var replaceBefore: UInt64 { max(restartIndex, keyChangeIndex) }
}

/// An application: its current manifest, the revisions that led to it, and per-service state.
public struct ApplicationRecord: Sendable, Hashable {
    /// The current revision's manifest, decoded.
    public internal(set) var application: Application
    /// Oldest first; the last one is current. Old revisions are pruned beyond
    /// ``ApplicationRecord/revisionHistoryLimit`` unless an instance still runs them.
    public internal(set) var revisions: [Revision]
    /// Keyed by service name; exactly the services of the current manifest.
    public internal(set) var services: [String: ServiceRecord]
    /// The log index of the apply that created it.
    public internal(set) var createdIndex: UInt64
    /// The log index of the last change to its manifest or services.
    public internal(set) var modifiedIndex: UInt64
    /// The latest rollout, kept once it ended for `deployctl rollout status`.
    public internal(set) var rollout: Rollout?
    /// The latest revision whose rollout succeeded: what `autoRevert` goes back to. Kept when
    /// older revisions are pruned.
    public internal(set) var lastHealthyRevision: UInt64?

    /// Revisions kept for `deployctl history` and rollbacks (Kubernetes' revisionHistoryLimit is 10 too).
    public static let revisionHistoryLimit = 10

    /// The application's name.
    public var name: String { application.name }

    /// The number of the current revision.
    public var currentRevision: UInt64 {
        revisions.last?.number ?? 0
    }

    /// The revision with that number, if still kept.
    public func revision(_ number: UInt64) -> Revision? {
        revisions.first { $0.number == number }
    }

    /// The current manifest of one service.
    public func service(named name: String) -> Service? {
        application.service(named: name)
    }
}

extension ApplicationRecord: Codable {
    private enum CodingKeys: String, CodingKey { case revisions, services, createdIndex, modifiedIndex, rollout, lastHealthyRevision }

    /// Restores the decoded manifest from the current revision's text: snapshots carry text
    /// only, the one form every version of the decoder agrees on.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        revisions = try container.decode([Revision].self, forKey: .revisions)
        services = try container.decode([String: ServiceRecord].self, forKey: .services)
        createdIndex = try container.decode(UInt64.self, forKey: .createdIndex)
        modifiedIndex = try container.decode(UInt64.self, forKey: .modifiedIndex)
        // Absent from snapshots written before rollouts were kept.
        rollout = try container.decodeIfPresent(Rollout.self, forKey: .rollout)
        lastHealthyRevision = try container.decodeIfPresent(UInt64.self, forKey: .lastHealthyRevision)
        guard let current = revisions.last else {
            throw DecodingError.dataCorruptedError(forKey: .revisions, in: container, debugDescription: "an application without revisions")
        }
        do {
            application = try ManifestDecoder.decode(Array(current.manifestJSON.utf8))
        } catch {
            throw DecodingError.dataCorruptedError(
                forKey: .revisions, in: container, debugDescription: "revision \(current.number) no longer decodes: \(error)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(revisions, forKey: .revisions)
        try container.encode(services, forKey: .services)
        try container.encode(createdIndex, forKey: .createdIndex)
        try container.encode(modifiedIndex, forKey: .modifiedIndex)
        try container.encodeIfPresent(rollout, forKey: .rollout)
        try container.encodeIfPresent(lastHealthyRevision, forKey: .lastHealthyRevision)
    }
}
