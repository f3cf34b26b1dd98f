/// When and how quickly an exited instance is started again.
public struct RestartPolicy: ManifestObject, Hashable {
    public var policy: RestartPolicyKind
    public var initialDelay: Duration
    public var maxDelay: Duration
    public var resetAfter: Duration
    public var maxRestarts: Int
    public var window: Duration

    public init(
        policy: RestartPolicyKind = .always, initialDelay: Duration = .milliseconds(250), maxDelay: Duration = .seconds(60),
        resetAfter: Duration = .seconds(60), maxRestarts: Int = 10, window: Duration = .seconds(600)
    ) {
        self.policy = policy
        self.initialDelay = initialDelay
        self.maxDelay = maxDelay
        self.resetAfter = resetAfter
        self.maxRestarts = maxRestarts
        self.window = window
    }

    public static let spec = ObjectSpec(
        "RestartPolicy",
        doc: "Restarts back off exponentially with jitter from `initialDelay` up to `maxDelay`. More than `maxRestarts` restarts within `window` marks the instance *failed*, with the reason of the last exit.",
        fields: [
            FieldSpec("policy", RestartPolicyKind.self, default: "always", doc: "`always` restarts after any exit; `on-failure` only after a non-zero exit, a signal, an OOM kill, a failed health check or a missed watchdog; `never` runs the instance once (a batch job), ending *completed* or *failed*."),
            FieldSpec("initialDelay", Duration.self, default: "250ms", doc: "Delay before the first restart; it doubles with each further one."),
            FieldSpec("maxDelay", Duration.self, default: "1m", doc: "The longest delay between restarts."),
            FieldSpec("resetAfter", Duration.self, default: "1m", doc: "An instance that has run this long counts as stable: its next restart starts again from `initialDelay`."),
            FieldSpec("maxRestarts", Int.self, default: 10, constraints: [.integerRange(0...1_000_000)], doc: "Restarts allowed within `window`; one more marks the instance failed."),
            FieldSpec("window", Duration.self, default: "10m", constraints: [.positiveDuration], doc: "The sliding window `maxRestarts` counts over."),
        ])

    public init?(reading reader: ObjectReader) {
        policy = reader.read("policy") ?? .always
        initialDelay = reader.read("initialDelay") ?? .milliseconds(250)
        maxDelay = reader.read("maxDelay") ?? .seconds(60)
        resetAfter = reader.read("resetAfter") ?? .seconds(60)
        maxRestarts = reader.read("maxRestarts") ?? 10
        window = reader.read("window") ?? .seconds(600)
        if initialDelay > maxDelay, !reader.isInvalid("initialDelay"), !reader.isInvalid("maxDelay") {
            reader.report("initialDelay", "\(DurationText.format(initialDelay)) is longer than maxDelay \(DurationText.format(maxDelay)); make it at most maxDelay")
        }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("policy", policy)
        writer.write("initialDelay", initialDelay)
        writer.write("maxDelay", maxDelay)
        writer.write("resetAfter", resetAfter)
        writer.write("maxRestarts", maxRestarts)
        writer.write("window", window)
    }
}
