import Foundation
import AgentAPI
import Cluster
import Raft
import Controller
import Manifest

/// Renders the replicated state as the API's wire types (generated from openapi.json).
enum APIMapping {
    typealias Schemas = Components.Schemas

    static func instance(_ record: InstanceRecord) -> Schemas.InstanceInfo {
        Schemas.InstanceInfo(
            id: record.id, application: record.service.application, service: record.service.service, index: record.index,
            revision: signed(record.revision), node: record.node,
            ports: record.ports.map(port),
            desired: record.desiredState == .run ? .run : .stop, status: status(record.status),
            mainPID: record.mainPID, restartCount: record.restartCount, lastExit: record.lastExit.map(exit),
            exit: record.exit.map(exit),
            events: record.events.map {
                Schemas.InstanceEventInfo(time: $0.time.unixMilliseconds, status: eventStatus($0.status), message: $0.message)
            },
            createdIndex: signed(record.createdIndex))
    }

    static func exit(_ exit: Controller.ExitInfo) -> Schemas.ExitInfo {
        Schemas.ExitInfo(code: exit.code, signal: exit.signal, oomKilled: exit.oomKilled)
    }

    static func status(_ status: Controller.InstanceStatus) -> Schemas.InstanceInfo.StatusPayload {
        // The document lists the same words; an unknown one cannot reach here.
        Schemas.InstanceInfo.StatusPayload(rawValue: status.rawValue) ?? .lost
    }

    static func eventStatus(_ status: Controller.InstanceStatus) -> Schemas.InstanceEventInfo.StatusPayload {
        Schemas.InstanceEventInfo.StatusPayload(rawValue: status.rawValue) ?? .lost
    }

    /// Log indexes and revisions are unsigned in the state machine and int64 on the wire.
    static func signed(_ value: UInt64) -> Int64 { Int64(clamping: value) }

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

    static func service(_ name: String, of record: ApplicationRecord, in state: ClusterState) -> Schemas.ServiceStatus? {
        guard let manifest = record.service(named: name), let serviceRecord = record.services[name] else { return nil }
        let key = ServiceKey(record.name, name)
        let instances = state.instances(of: key).filter { $0.desiredState == .run }
        var counts: [String: Int] = [:]
        for instance in instances { counts[instance.status.rawValue, default: 0] += 1 }
        let ready = instances.filter { state.isCurrent($0) && isReady($0, service: manifest) }.count
        return Schemas.ServiceStatus(
            name: name, revision: signed(record.currentRevision), replicas: serviceRecord.replicas, ready: ready,
            counts: .init(additionalProperties: counts),
            unplaced: serviceRecord.unplaced.map { "\($0.count) instance\($0.count == 1 ? "" : "s"): \($0.reason)" },
            isBatch: manifest.restart.policy == .never)
    }

    static func application(_ record: ApplicationRecord, in state: ClusterState, detail: Bool) -> Schemas.ApplicationInfo {
        Schemas.ApplicationInfo(
            name: record.name, revision: signed(record.currentRevision), description: record.application.description,
            services: record.application.services.compactMap { service($0.name, of: record, in: state) },
            revisions: detail
                ? record.revisions.map {
                    Schemas.RevisionInfo(
                        number: signed($0.number), appliedIndex: signed($0.appliedIndex), appliedAt: $0.appliedAt.unixMilliseconds,
                        rolledOutAt: $0.rolledOutAt?.unixMilliseconds, origin: $0.origin)
                } : nil,
            manifest: detail ? record.revisions.last?.manifestJSON : nil,
            rollout: record.rollout.map(rollout), lastHealthyRevision: record.lastHealthyRevision.map(signed))
    }

    static func rollout(_ rollout: Rollout) -> Schemas.RolloutInfo {
        Schemas.RolloutInfo(
            revision: signed(rollout.revision), services: rollout.services,
            phase: Schemas.RolloutInfo.PhasePayload(rawValue: rollout.phase.rawValue) ?? .failed,
            startedIndex: signed(rollout.startedIndex), startedAt: rollout.startedAt.unixMilliseconds, updated: rollout.updated,
            progressAt: rollout.progressAt.unixMilliseconds, endedAt: rollout.endedAt?.unixMilliseconds, message: rollout.message,
            revertOf: rollout.revertOf.map(signed),
            events: rollout.events.map { Schemas.RolloutEvent(time: $0.time.unixMilliseconds, message: $0.message) },
            canaries: rollout.canary.map { .init(additionalProperties: $0.counts) }, awaitingPromotion: rollout.canary?.awaitingPromotion,
            promoted: rollout.canary?.promoted)
    }

    static func node(_ record: NodeRecord, in state: ClusterState) -> Schemas.NodeInfo {
        let live = state.instances(on: record.name).filter(\.isLive)
        let registration = record.registration
        return Schemas.NodeInfo(
            name: record.name, address: registration.address, status: Schemas.NodeInfo.StatusPayload(rawValue: record.status.rawValue) ?? .down,
            labels: .init(additionalProperties: registration.labels),
            os: registration.attributes.os, arch: registration.attributes.arch, kernel: registration.attributes.kernel,
            cpus: registration.attributes.cpus, memoryBytes: registration.attributes.memoryBytes,
            capacityCPUMillicores: registration.capacity.cpuMillicores, capacityMemoryBytes: registration.capacity.memoryBytes,
            reservedCPUMillicores: live.reduce(0) { $0 + $1.reservedCPUMillicores },
            reservedMemoryBytes: live.reduce(0) { $0 + $1.reservedMemoryBytes }, instances: live.count,
            lastHeartbeat: record.lastHeartbeat.unixMilliseconds)
    }

    static func applyResult(_ name: String, revision: UInt64, diff: ApplicationDiff, dryRun: Bool, index: UInt64) -> Schemas.ApplyResult {
        Schemas.ApplyResult(
            application: name, revision: signed(revision), created: diff.added, replaced: diff.replaced,
            updatedInPlace: diff.updatedInPlace, removed: diff.removed, unchanged: diff.unchanged, dryRun: dryRun, index: signed(index))
    }

    /// A refused command as the API's error.
    static func error(_ error: ControllerError) -> APIError {
        var result = APIError(code: error.code, message: error.message)
        result.issues = error.issues.map { Schemas.ManifestIssue(path: $0.path.description, message: $0.message) }
        if case .revisionConflict(_, _, let current) = error { result.currentRevision = signed(current) }
        return result
    }
}

extension APIMapping {
    /// The members: every Raft member and every recorded server or client, by id.
    static func members(_ recorded: [UInt64: MemberRecord], raft: RaftStatus) -> [Schemas.MemberInfo] {
        let ids = raft.confState.voters.union(raft.confState.learners).union(recorded.keys)
        return ids.sorted().map { id in
            let role: Schemas.MemberInfo.RolePayload =
                raft.confState.voters.contains(id)
                ? .voter : raft.confState.learners.contains(id) ? .learner : recorded[id]?.role == .client ? .client : .recorded
            return Schemas.MemberInfo(
                id: signed(id), name: recorded[id]?.name ?? "", address: recorded[id]?.address ?? "", role: role,
                leader: raft.softState.leader == id)
        }
    }

    static func joinToken(_ token: JoinToken) -> Schemas.JoinTokenInfo {
        Schemas.JoinTokenInfo(token: token.encoded, caPin: token.caPin.description)
    }
}

extension APIMapping {
    /// An entry on the wire: its value as base64, or left out (a listing of keys, a write's answer).
    static func kvEntry(_ entry: KVEntry, withValue: Bool) -> Schemas.KVEntry {
        Schemas.KVEntry(
            key: entry.key.description, value: withValue ? Data(entry.value).base64EncodedString() : nil, size: Int64(entry.value.count),
            createIndex: signed(entry.createIndex), modifyIndex: signed(entry.modifyIndex))
    }

    static func kvOperationResult(_ operation: KVOperation, _ result: KVOperationResult) -> Schemas.KVOperationResult {
        let (op, key): (Schemas.KVOperationResult.OpPayload, KVKey) =
            switch operation {
            case .get(let key): (.get, key)
            case .set(let key, _): (.set, key)
            case .delete(let key): (.delete, key)
            case .deleteTree(let prefix): (.deleteTree, prefix)
            }
        switch result {
        case .read(let entry): return Schemas.KVOperationResult(op: op, key: key.description, entry: entry.map { kvEntry($0, withValue: true) })
        case .written(let entry): return Schemas.KVOperationResult(op: op, key: key.description, entry: kvEntry(entry, withValue: false))
        case .deleted(let count): return Schemas.KVOperationResult(op: op, key: key.description, deleted: Int64(count))
        }
    }

    /// A comparison that did not hold, named, with what the key holds: a `?cas=` write's
    /// as cas_failed, a transaction's as compare_failed at `compares[N]`.
    static func compareFailed(_ failed: KVFailedCompare, checkAndSet: Bool) -> APIError {
        let key = failed.compare.key
        let holds = failed.current.map { "it has modify index \($0.modifyIndex)" } ?? "it does not exist"
        let expected: String =
            switch failed.compare {
            case .modifyIndex(_, 0): "not to exist"
            case .modifyIndex(_, let index): "to have modify index \(index)"
            case .value(_, let value): "to hold the \(value.count)-byte value given"
            }
        if checkAndSet {
            return APIError(
                code: APIErrorCode.casFailed, message: "key \"\(key)\" was expected \(expected), but \(holds); read it again and retry with its index",
                path: "cas")
        }
        return APIError(
            code: APIErrorCode.compareFailed, message: "comparison \(failed.position) failed: key \"\(key)\" was expected \(expected), but \(holds); nothing was changed",
            path: "compares[\(failed.position)]")
    }
}

extension APIMapping {
    static func catalogInstance(_ instance: CatalogInstance) -> Schemas.CatalogInstanceInfo {
        Schemas.CatalogInstanceInfo(
            id: instance.id, name: instance.name, application: instance.service.application, service: instance.service.service,
            node: instance.node, address: instance.address, port: instance.port.map(port), ports: instance.ports.map(port), tags: instance.tags,
            revision: signed(instance.revision), weight: instance.weight, health: instance.health == .passing ? .passing : .critical,
            modifiedIndex: signed(instance.modifiedIndex))
    }

    static func port(_ port: AssignedPort) -> Schemas.PortInfo {
        Schemas.PortInfo(name: port.name, number: port.number, _protocol: port.protocol == .udp ? .udp : .tcp)
    }
}

extension APIMapping {
    /// The wire's whole catalog back as the catalog it was rendered from.
    static func catalog(_ snapshot: Schemas.CatalogSnapshot, index: UInt64) -> Catalog {
        let instances = snapshot.instances.map { info in
            CatalogInstance(
                id: info.id, name: info.name, service: ServiceKey(info.application, info.service), node: info.node, address: info.address,
                port: info.port.map(assignedPort), ports: info.ports.map(assignedPort), tags: info.tags, revision: UInt64(clamping: info.revision),
                weight: info.weight, health: info.health == .passing ? .passing : .critical, modifiedIndex: UInt64(clamping: info.modifiedIndex))
        }
        return Catalog(instances: instances, nodes: Dictionary(snapshot.nodes.map { ($0.name, $0.address) }) { first, _ in first }, index: index)
    }

    static func assignedPort(_ port: Schemas.PortInfo) -> AssignedPort {
        AssignedPort(name: port.name, number: port.number, protocol: port._protocol == .udp ? .udp : .tcp)
    }
}
