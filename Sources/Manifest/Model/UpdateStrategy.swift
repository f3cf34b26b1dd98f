/// How a new revision of a service replaces the running instances (Nomad's `update` block).
public struct UpdateStrategy: ManifestObject, Hashable {
    public var maxParallel: Int
    public var maxSurge: Int
    public var minHealthyTime: Duration
    public var healthyDeadline: Duration
    public var progressDeadline: Duration
    public var autoRevert: Bool
    public var canaries: Int
    public var autoPromote: Bool

    public init(
        maxParallel: Int = 1, maxSurge: Int = 0, minHealthyTime: Duration = .seconds(10), healthyDeadline: Duration = .seconds(300),
        progressDeadline: Duration = .seconds(600), autoRevert: Bool = false, canaries: Int = 0, autoPromote: Bool = false
    ) {
        self.maxParallel = maxParallel
        self.maxSurge = maxSurge
        self.minHealthyTime = minHealthyTime
        self.healthyDeadline = healthyDeadline
        self.progressDeadline = progressDeadline
        self.autoRevert = autoRevert
        self.canaries = canaries
        self.autoPromote = autoPromote
    }

    public static let spec = ObjectSpec(
        "UpdateStrategy",
        doc: "How a new revision rolls out: `maxParallel` instances at a time, new ones started beside old ones while the service stays within `replicas + maxSurge`. A new instance counts as updated once ready for `minHealthyTime`, and only then is the instance it replaces stopped. The rollout fails when a new instance is not updated within `healthyDeadline` (or gives up restarting), or none is for `progressDeadline`; a failed rollout replaces nothing more (the old instances keep serving) and, with `autoRevert`, goes back to the last revision that rolled out whole. With `canaries`, that many new instances run beside the old ones first, and the rollout waits for their promotion.",
        fields: [
            FieldSpec("maxParallel", Int.self, default: 1, constraints: [.integerRange(1...10_000)], doc: "Instances replaced at the same time."),
            FieldSpec("maxSurge", Int.self, default: 0, constraints: [.integerRange(0...10_000)], doc: "Extra instances that may run above `replicas` during the rollout (new started before old stopped)."),
            FieldSpec("minHealthyTime", Duration.self, default: "10s", doc: "How long a new instance must stay ready (healthy, or running under `exec` readiness) to count as updated; the instance it replaces is stopped only then, and only then does the new one pass in service discovery."),
            FieldSpec("healthyDeadline", Duration.self, default: "5m", constraints: [.positiveDuration], doc: "How long a new instance has to count as updated; after it, the rollout fails, naming the instance and its last event."),
            FieldSpec("progressDeadline", Duration.self, default: "10m", constraints: [.positiveDuration], doc: "How long the rollout may go without one more instance counting as updated before it fails as a whole (new instances that cannot be placed, for one). Longer than `healthyDeadline`."),
            FieldSpec("autoRevert", Bool.self, default: false, doc: "When the rollout fails, apply the last revision whose rollout succeeded again, as a new revision with a rollout of its own. A revert that fails is not reverted again."),
            FieldSpec("canaries", Int.self, default: 0, constraints: [.integerRange(0...10_000)], doc: "When a new revision replaces running instances: that many new instances started beside the old ones (beyond `maxSurge`), after which the rollout waits for `deployctl rollout promote` (or `autoPromote`) before it replaces anything; at most `replicas`. Not used when the service is created."),
            FieldSpec("autoPromote", Bool.self, default: false, doc: "Promote the canaries once every one of them counts as updated (ready for `minHealthyTime`), without waiting for `deployctl rollout promote`."),
        ])

    public init?(reading reader: ObjectReader) {
        maxParallel = reader.read("maxParallel") ?? 1
        maxSurge = reader.read("maxSurge") ?? 0
        minHealthyTime = reader.read("minHealthyTime") ?? .seconds(10)
        healthyDeadline = reader.read("healthyDeadline") ?? .seconds(300)
        progressDeadline = reader.read("progressDeadline") ?? .seconds(600)
        autoRevert = reader.read("autoRevert") ?? false
        canaries = reader.read("canaries") ?? 0
        autoPromote = reader.read("autoPromote") ?? false
        // Nomad's rule: an instance must be able to be healthy for minHealthyTime before its
        // deadline, and the rollout's deadline must leave room for one instance's. A broken
        // value is not compared: its own problem is reported already.
        let healthyDeadlineIsValid = !reader.isInvalid("healthyDeadline")
        if minHealthyTime >= healthyDeadline, healthyDeadlineIsValid, !reader.isInvalid("minHealthyTime") {
            reader.report("minHealthyTime", "\(DurationText.format(minHealthyTime)) is not shorter than healthyDeadline \(DurationText.format(healthyDeadline)); no instance could ever pass — make it shorter")
        }
        if healthyDeadline >= progressDeadline, healthyDeadlineIsValid, !reader.isInvalid("progressDeadline") {
            reader.report("progressDeadline", "\(DurationText.format(progressDeadline)) is not longer than healthyDeadline \(DurationText.format(healthyDeadline)); make it longer")
        }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("maxParallel", maxParallel)
        writer.write("maxSurge", maxSurge)
        writer.write("minHealthyTime", minHealthyTime)
        writer.write("healthyDeadline", healthyDeadline)
        writer.write("progressDeadline", progressDeadline)
        writer.write("autoRevert", autoRevert)
        writer.write("canaries", canaries)
        writer.write("autoPromote", autoPromote)
    }
}
