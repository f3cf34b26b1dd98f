import Manifest

extension ClusterState {
    /// Applies a manifest. `origin`: how it came back when it is an earlier revision's (a
    /// revert or an undo), recorded on the revision and the rollout it starts.
    mutating func applyApplication(
        _ manifestJSON: String, expectedRevision: UInt64?, at index: UInt64, time: Timestamp, origin: RevisionOrigin? = nil
    ) throws(ControllerError) -> CommandResult {
        let application: Application
        do {
            application = try ManifestDecoder.decode(Array(manifestJSON.utf8))
        } catch {
            throw .invalidManifest(error.issues)
        }
        let existing = applications[application.name]
        let current = existing?.currentRevision ?? 0
        if let expectedRevision, expectedRevision != current {
            throw .revisionConflict(application: application.name, expected: expectedRevision, current: current)
        }
        let diff = ApplicationDiff(from: existing?.application, to: application)
        // Applying the current manifest again is the common case of `deployctl apply` in a
        // loop or a pipeline; it must not make revisions nor restart anything. It does undo a
        // `scale` since: the manifest's count is what was declared.
        if diff.isEmpty, let existing {
            for service in application.services where existing.services[service.name]?.replicas != service.replicas {
                applications[application.name]?.services[service.name]?.replicas = service.replicas
                applications[application.name]?.modifiedIndex = index
                lastChangeIndex = index
            }
            return .applicationApplied(name: application.name, revision: current, diff: diff)
        }

        let number = current + 1
        var record = existing ?? ApplicationRecord(application: application, revisions: [], services: [:], createdIndex: index, modifiedIndex: index)
        record.application = application
        record.modifiedIndex = index
        record.revisions.append(
            Revision(
                number: number, manifestJSON: JSONWriter.compact(application.json), appliedIndex: index, appliedAt: time, origin: origin?.summary))
        var services: [String: ServiceRecord] = [:]
        for service in application.services {
            // The manifest's count wins over an earlier `scale`, as `kubectl apply` does: the
            // manifest is the declared truth. Restart marks survive: a restart in progress goes on.
            var serviceRecord = record.services[service.name] ?? ServiceRecord(replicas: service.replicas)
            serviceRecord.replicas = service.replicas
            services[service.name] = serviceRecord
        }
        record.services = services
        applications[application.name] = record
        indexKeyReaders(of: application.name)

        let inPlace = Set(diff.unchanged + diff.updatedInPlace)
        let removed = Set(diff.removed)
        for id in instances.keys.sorted() {
            guard let instance = instances[id], instance.service.application == application.name, instance.desiredState == .run else { continue }
            if removed.contains(instance.service.service) {
                stop(id, reason: "service \(instance.service.service) was removed in revision \(number)", at: index)
            } else if inPlace.contains(instance.service.service), instance.revision == current {
                instances[id]?.revision = number
                instances[id]?.modifiedIndex = index
            }
        }
        let rolled = diff.added + diff.replaced
        if rolled.isEmpty {
            carryRollout(of: application.name, from: current)
        } else {
            let reason = origin?.reason ?? (existing == nil ? "created" : "applied")
            startRollout(of: application.name, services: rolled, reason: reason, revertOf: origin?.reverted, at: index, time: time)
        }
        pruneRevisions(of: application.name)
        lastChangeIndex = index
        return .applicationApplied(name: application.name, revision: number, diff: diff)
    }

    mutating func deleteApplication(_ name: String, expectedRevision: UInt64?, at index: UInt64) throws(ControllerError) -> CommandResult {
        guard let record = applications[name] else { throw .applicationNotFound(name) }
        if let expectedRevision, expectedRevision != record.currentRevision {
            throw .revisionConflict(application: name, expected: expectedRevision, current: record.currentRevision)
        }
        // Stopped before the application goes, so that each still finds its drain delay.
        var stopping: [InstanceID] = []
        for id in instances.keys.sorted() where instances[id]?.service.application == name {
            if stop(id, reason: "application \(name) was deleted", at: index) { stopping.append(id) }
        }
        applications[name] = nil
        indexKeyReaders(of: name)
        lastChangeIndex = index
        return .applicationDeleted(name: name, stopping: stopping)
    }

    mutating func scaleService(_ key: ServiceKey, replicas: Int, expectedRevision: UInt64?, at index: UInt64) throws(ControllerError) -> CommandResult {
        let record = try existingService(key)
        if let expectedRevision, expectedRevision != record.currentRevision {
            throw .revisionConflict(application: key.application, expected: expectedRevision, current: record.currentRevision)
        }
        // The manifest's own bounds for `replicas`.
        guard (0...10_000).contains(replicas) else { throw .invalidReplicas(key, replicas) }
        if record.services[key.service]?.replicas != replicas {
            applications[key.application]?.services[key.service]?.replicas = replicas
            applications[key.application]?.modifiedIndex = index
            lastChangeIndex = index
        }
        return .serviceScaled(key, replicas: replicas)
    }

    mutating func restartService(_ key: ServiceKey, at index: UInt64, time: Timestamp) throws(ControllerError) -> CommandResult {
        _ = try existingService(key)
        applications[key.application]?.services[key.service]?.restartIndex = index
        startRollout(of: key.application, services: [key.service], reason: "\(key.service) restarted", at: index, time: time)
        applications[key.application]?.modifiedIndex = index
        lastChangeIndex = index
        return .serviceRestarted(key, restartIndex: index)
    }

    private func existingService(_ key: ServiceKey) throws(ControllerError) -> ApplicationRecord {
        guard let record = applications[key.application] else { throw .applicationNotFound(key.application) }
        guard record.services[key.service] != nil else { throw .serviceNotFound(key) }
        return record
    }

    /// Drops the oldest revisions beyond the history limit, except those an instance still
    /// runs: its node needs that manifest to run and to stop it.
    private mutating func pruneRevisions(of name: String) {
        guard var record = applications[name], record.revisions.count > ApplicationRecord.revisionHistoryLimit else { return }
        var inUse = Set(instances.values.filter { $0.service.application == name }.map(\.revision))
        // What `autoRevert` would go back to.
        if let healthy = record.lastHealthyRevision { inUse.insert(healthy) }
        let current = record.currentRevision
        var excess = record.revisions.count - ApplicationRecord.revisionHistoryLimit
        record.revisions.removeAll { revision in
            guard excess > 0, revision.number != current, !inUse.contains(revision.number) else { return false }
            excess -= 1
            return true
        }
        applications[name] = record
    }
}
