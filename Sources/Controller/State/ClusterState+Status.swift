extension ClusterState {
    mutating func recordStatus(from node: String, _ reports: [InstanceStatusReport], at index: UInt64, time: Timestamp) throws(ControllerError) -> CommandResult {
        guard nodes[node] != nil else { throw .nodeNotFound(node) }
        var accepted = 0
        var ignored: [InstanceID] = []
        for report in reports {
            // Only the node an instance is placed on speaks for it; a report may also arrive
            // after the instance was forgotten (stopped while its node was down). `lost` is the
            // cluster's verdict, not something a node can observe. An ended instance stays
            // ended: its resources and ports may already be someone else's, so a late or
            // confused report must not bring it back (a restart is a new instance).
            guard var instance = instances[report.id], instance.node == node, report.status != .lost,
                !instance.status.isTerminal || report.status.isTerminal
            else {
                ignored.append(report.id)
                continue
            }
            accepted += 1
            let message = report.message.isEmpty ? "\(report.status.rawValue) on \(node)" : report.message
            // A report without an exit says nothing about it: the recorded one stays.
            let isNewExit = report.exit.map { $0 != instance.exit } ?? false
            let statusChanged = instance.status != report.status || isNewExit || instance.events.last?.message != message
            let processChanged = instance.recordProcess(from: report)
            guard statusChanged || processChanged else { continue }
            if statusChanged {
                if report.exit != nil { instance.exit = report.exit }
                instance.record(report.status, message, at: time)
            }
            instance.modifiedIndex = index
            setInstance(instance, id: report.id)
            forgetIfSettled(report.id)
            lastChangeIndex = index
        }
        return .statusRecorded(accepted: accepted, ignored: ignored)
    }
}
