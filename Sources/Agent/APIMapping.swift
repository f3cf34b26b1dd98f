import AgentAPI
import Controller
import Manifest

/// Renders the replicated state as the API's wire types.
enum APIMapping {
    static func instance(_ record: InstanceRecord) -> InstanceInfo {
        InstanceInfo(
            id: record.id, application: record.service.application, service: record.service.service, index: record.index,
            revision: record.revision, node: record.node,
            ports: record.ports.map { PortInfo(name: $0.name, number: $0.number, protocol: $0.protocol.rawValue) },
            desired: record.desiredState.rawValue, status: record.status.rawValue,
            exit: record.exit.map { AgentAPI.ExitInfo(code: $0.code, signal: $0.signal, oomKilled: $0.oomKilled) },
            events: record.events.map { InstanceEventInfo(time: $0.time.unixMilliseconds, status: $0.status.rawValue, message: $0.message) },
            createdIndex: record.createdIndex)
    }

    /// Whether an instance counts as up: healthy, or running when its service has no health
    /// check (nothing else could ever say more), or done for a batch job.
    static func isReady(_ record: InstanceRecord, service: Service?) -> Bool {
        switch record.status {
        case .healthy: true
        case .running: service?.health == nil
        case .completed: service?.restart.policy == .never
        default: false
        }
    }

    static func service(_ name: String, of record: ApplicationRecord, in state: ClusterState) -> ServiceStatus? {
        guard let manifest = record.service(named: name), let serviceRecord = record.services[name] else { return nil }
        let key = ServiceKey(record.name, name)
        let instances = state.instances(of: key).filter { $0.desiredState == .run }
        var counts: [String: Int] = [:]
        for instance in instances { counts[instance.status.rawValue, default: 0] += 1 }
        let ready = instances.filter { state.isCurrent($0) && isReady($0, service: manifest) }.count
        return ServiceStatus(
            name: name, revision: record.currentRevision, replicas: serviceRecord.replicas, ready: ready, counts: counts,
            unplaced: serviceRecord.unplaced.map { "\($0.count) instance\($0.count == 1 ? "" : "s"): \($0.reason)" },
            isBatch: manifest.restart.policy == .never)
    }

    static func application(_ record: ApplicationRecord, in state: ClusterState, detail: Bool) -> ApplicationInfo {
        ApplicationInfo(
            name: record.name, revision: record.currentRevision, description: record.application.description,
            services: record.application.services.compactMap { service($0.name, of: record, in: state) },
            revisions: detail ? record.revisions.map { RevisionInfo(number: $0.number, appliedIndex: $0.appliedIndex, appliedAt: $0.appliedAt.unixMilliseconds) } : nil,
            manifest: detail ? record.revisions.last?.manifestJSON : nil)
    }

    static func node(_ record: NodeRecord, in state: ClusterState) -> NodeInfo {
        let live = state.instances(on: record.name).filter(\.isLive)
        let registration = record.registration
        return NodeInfo(
            name: record.name, address: registration.address, status: record.status.rawValue, labels: registration.labels,
            os: registration.attributes.os, arch: registration.attributes.arch, kernel: registration.attributes.kernel,
            cpus: registration.attributes.cpus, memoryBytes: registration.attributes.memoryBytes,
            capacityCPUMillicores: registration.capacity.cpuMillicores, capacityMemoryBytes: registration.capacity.memoryBytes,
            reservedCPUMillicores: live.reduce(0) { $0 + $1.reservedCPUMillicores },
            reservedMemoryBytes: live.reduce(0) { $0 + $1.reservedMemoryBytes }, instances: live.count,
            lastHeartbeat: record.lastHeartbeat.unixMilliseconds)
    }

    static func applyResult(_ name: String, revision: UInt64, diff: ApplicationDiff, dryRun: Bool, index: UInt64) -> ApplyResult {
        ApplyResult(
            application: name, revision: revision, created: diff.added, replaced: diff.replaced, updatedInPlace: diff.updatedInPlace,
            removed: diff.removed, unchanged: diff.unchanged, dryRun: dryRun, index: index)
    }

    /// A refused command as the API's error.
    static func error(_ error: ControllerError) -> APIError {
        var result = APIError(code: error.code, message: error.message)
        result.issues = error.issues.map { APIError.Issue(path: $0.path.description, message: $0.message) }
        if case .revisionConflict(_, _, let current) = error { result.currentRevision = current }
        return result
    }
}
