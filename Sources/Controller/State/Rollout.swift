/// The replacement of an application's instances by a revision: made by the state machine
/// when an apply changes what some services run, or a restart or a key change asks for new
/// instances; moved on only by the leader's committed plans (``RolloutUpdate``). Its whole
/// state is in the replicated log, so that a new leader continues it where the old one was.
public struct Rollout: Sendable, Hashable, Codable {
    /// Where a rollout stands.
    public enum Phase: String, Sendable, Hashable, Codable {
        /// Replacing instances under each service's `update` strategy.
        case running
        /// Held by an operator: instances already starting go on, no further one is replaced,
        /// no deadline runs.
        case paused
        /// Every slot of every service it rolls has an updated instance and no outdated one is left.
        case succeeded
        /// An instance failed or missed its `healthyDeadline`, or nothing was updated for a
        /// `progressDeadline`: no further instance is replaced (the outdated ones keep serving).
        case failed
        /// A newer revision, restart or key change took over before it ended.
        case superseded

        /// Whether the rollout is over.
        public var isFinal: Bool { self != .running && self != .paused }
    }

    /// The application revision it rolls out.
    public var revision: UInt64
    /// The services whose instances it replaces, sorted.
    public var services: [String]
    /// The log index of the entry that started it: instances created at or after it are its own.
    public var startedIndex: UInt64
    /// The proposer's time of that entry.
    public var startedAt: Timestamp
    public var phase: Phase
    /// Instances of its services counted as updated: current, created by it, and healthy (or
    /// running, for exec readiness) for their `minHealthyTime`.
    public var updated: Int
    /// When `updated` last grew, or the rollout started: what `progressDeadline` counts from.
    public var progressAt: Timestamp
    /// When it was last resumed: the `healthyDeadline` of an instance started before counts
    /// from here, the pause not against it.
    public var resumedAt: Timestamp?
    /// When it ended.
    public var endedAt: Timestamp?
    /// Why it failed or was superseded.
    public var message: String?
    /// The failed revision this rollout reverts (`autoRevert`), when it is a revert.
    public var revertOf: UInt64?
    /// The latest events, oldest first, at most ``Rollout/eventLimit``.
    public var events: [RolloutEvent]
    /// Its canaries, when a rolled service asked for some: nil without.
    public var canary: CanaryState?

    /// Events kept per rollout: what `deployctl rollout status` shows.
    public static let eventLimit = 20

    /// A rollout as the state machine starts it.
    public init(
        revision: UInt64, services: [String], startedIndex: UInt64, startedAt: Timestamp, revertOf: UInt64? = nil, canaries: [String: Int] = [:],
        message: String
    ) {
        self.revision = revision
        self.services = services.sorted()
        self.startedIndex = startedIndex
        self.startedAt = startedAt
        phase = .running
        updated = 0
        progressAt = startedAt
        self.revertOf = revertOf
        events = [RolloutEvent(time: startedAt, message: message)]
        let counts = canaries.filter { $0.value > 0 }
        canary = counts.isEmpty ? nil : CanaryState(counts: counts)
    }

    /// The canaries still to run beside the old instances of `service` before it rolls on:
    /// none once promoted (or without canaries).
    public func canaries(of service: String) -> Int {
        guard let canary, !canary.promoted else { return 0 }
        return canary.counts[service] ?? 0
    }

    mutating func record(_ message: String, at time: Timestamp) {
        events.append(RolloutEvent(time: time, message: message))
        if events.count > Self.eventLimit { events.removeFirst(events.count - Self.eventLimit) }
    }

    mutating func end(_ phase: Phase, _ message: String, at time: Timestamp) {
        self.phase = phase
        endedAt = time
        if phase != .succeeded { self.message = message }
        record(message, at: time)
    }
}

/// A rollout's canaries: new instances beside the old ones, then a wait for promotion.
public struct CanaryState: Sendable, Hashable, Codable {
    /// Canaries per service (only services with some).
    public var counts: [String: Int]
    /// Every canary counts as updated: the rollout waits for `deployctl rollout promote`.
    public var awaitingPromotion = false
    /// Promoted: the rollout replaces the rest.
    public var promoted = false
}

/// One line of a rollout's history.
public struct RolloutEvent: Sendable, Hashable, Codable {
    /// The time of the entry that recorded it.
    public var time: Timestamp
    /// What happened, for people.
    public var message: String
}

/// A rollout step that took effect when its plan was committed, with the event it recorded.
public struct AppliedRolloutStep: Sendable, Hashable {
    public var update: RolloutUpdate
    /// The text of the event the step added to the rollout's record.
    public var message: String
}

/// A step of a rollout the leader decided, carried by a plan. Applied only to the rollout it
/// was decided for (same application and start), and only while that rollout runs: a plan
/// computed before a newer apply must not end the newer rollout.
public struct RolloutUpdate: Sendable, Hashable, Codable {
    /// What happens to the rollout.
    public enum Change: Sendable, Hashable, Codable {
        /// More instances count as updated: the progress deadline starts again.
        case progressed(updated: Int)
        /// Every slot is updated.
        case succeeded
        /// It cannot go on, for this reason ("web[3] not healthy after 5m (healthyDeadline): …").
        case failed(reason: String)
        /// Every canary counts as updated; the rollout waits for promotion.
        case awaitingPromotion
        /// Every canary counts as updated and every service with canaries asks for `autoPromote`.
        case promoted
    }

    /// The application whose rollout it is.
    public var application: String
    /// The `startedIndex` of the rollout it was decided for.
    public var startedIndex: UInt64
    public var change: Change
    /// Each rolled service's `replicas` as the step was decided (nil in the plans of agents
    /// before it was added: such a step applies whatever the counts are now). The leader decides
    /// on a copy of the state, and a `scale` can commit before its plan does: a success decided
    /// for two replicas must not end a rollout that now has four, two of them never run, nor
    /// one decided at zero (nothing run) record the revision as healthy once it is back at two.
    /// A step whose counts differ from the state's is dropped; the next pass decides again.
    public var replicas: [String: Int]?

    /// A step for the rollout of `application` started at `startedIndex`, decided with the
    /// rolled services at `replicas`.
    public init(application: String, startedIndex: UInt64, change: Change, replicas: [String: Int]? = nil) {
        self.application = application
        self.startedIndex = startedIndex
        self.change = change
        self.replicas = replicas
    }
}
