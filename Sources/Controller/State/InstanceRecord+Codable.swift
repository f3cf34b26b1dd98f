/// Snapshots' format for instances, written out by hand so that members added later decode
/// from snapshots written before them: `mainPID`, `restartCount` and `lastExit` are absent
/// there and read as nil, 0 and nil, and `drainMilliseconds` as none.
extension InstanceRecord {
    private enum CodingKeys: String, CodingKey {
        case id, service, index, revision, node, ports, reservedCPUMillicores, reservedMemoryBytes, desiredState, stopReason, drainMilliseconds
        case status, exit, mainPID, restartCount, lastExit, events, createdIndex, createdAt, modifiedIndex, awaitsMinHealthyTime
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(InstanceID.self, forKey: .id)
        service = try container.decode(ServiceKey.self, forKey: .service)
        index = try container.decode(Int.self, forKey: .index)
        revision = try container.decode(UInt64.self, forKey: .revision)
        node = try container.decode(String.self, forKey: .node)
        ports = try container.decode([AssignedPort].self, forKey: .ports)
        reservedCPUMillicores = try container.decode(Int.self, forKey: .reservedCPUMillicores)
        reservedMemoryBytes = try container.decode(Int64.self, forKey: .reservedMemoryBytes)
        desiredState = try container.decode(DesiredState.self, forKey: .desiredState)
        stopReason = try container.decodeIfPresent(String.self, forKey: .stopReason)
        drainDelay = try container.decodeIfPresent(Int64.self, forKey: .drainMilliseconds).map(Duration.milliseconds)
        status = try container.decode(InstanceStatus.self, forKey: .status)
        exit = try container.decodeIfPresent(ExitInfo.self, forKey: .exit)
        mainPID = try container.decodeIfPresent(Int32.self, forKey: .mainPID)
        restartCount = try container.decodeIfPresent(Int.self, forKey: .restartCount) ?? 0
        lastExit = try container.decodeIfPresent(ExitInfo.self, forKey: .lastExit)
        events = try container.decode([InstanceEvent].self, forKey: .events)
        createdIndex = try container.decode(UInt64.self, forKey: .createdIndex)
        createdAt = try container.decode(Timestamp.self, forKey: .createdAt)
        modifiedIndex = try container.decode(UInt64.self, forKey: .modifiedIndex)
        awaitsMinHealthyTime = try container.decodeIfPresent(Bool.self, forKey: .awaitsMinHealthyTime) ?? false
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(service, forKey: .service)
        try container.encode(index, forKey: .index)
        try container.encode(revision, forKey: .revision)
        try container.encode(node, forKey: .node)
        try container.encode(ports, forKey: .ports)
        try container.encode(reservedCPUMillicores, forKey: .reservedCPUMillicores)
        try container.encode(reservedMemoryBytes, forKey: .reservedMemoryBytes)
        try container.encode(desiredState, forKey: .desiredState)
        try container.encodeIfPresent(stopReason, forKey: .stopReason)
        try container.encodeIfPresent(drainDelay.map { $0 / .milliseconds(1) }.map { Int64($0.rounded()) }, forKey: .drainMilliseconds)
        try container.encode(status, forKey: .status)
        try container.encodeIfPresent(exit, forKey: .exit)
        try container.encodeIfPresent(mainPID, forKey: .mainPID)
        try container.encode(restartCount, forKey: .restartCount)
        try container.encodeIfPresent(lastExit, forKey: .lastExit)
        try container.encode(events, forKey: .events)
        try container.encode(createdIndex, forKey: .createdIndex)
        try container.encode(createdAt, forKey: .createdAt)
        try container.encode(modifiedIndex, forKey: .modifiedIndex)
        if awaitsMinHealthyTime { try container.encode(true, forKey: .awaitsMinHealthyTime) }
    }
}
