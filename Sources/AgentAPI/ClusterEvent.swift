/// A cluster event, as `deployctl events` shows it and the event stream carries it
/// (`#/components/schemas/ClusterEvent`, generated).
public typealias ClusterEvent = Components.Schemas.ClusterEvent

extension Components.Schemas.ClusterEvent {
    /// An event at Raft log index `index` (the state machine counts indexes unsigned).
    public init(
        index: UInt64, time: Int64, kind: String, application: String? = nil, service: String? = nil, instance: String? = nil,
        node: String? = nil, message: String
    ) {
        self.init(
            index: Int64(clamping: index), time: time, kind: kind, application: application, service: service, instance: instance,
            node: node, message: message)
    }

    /// The log index, unsigned as the state machine counts it.
    public var logIndex: UInt64 { UInt64(clamping: index) }
}

/// One line of an instance's output (`#/components/schemas/LogLine`, generated).
public typealias LogLine = Components.Schemas.LogLine
