import Manifest

extension ClusterState {
    /// Starts a rollout of `services` of application `name` at its current revision. A rollout
    /// still running is superseded and its services carried over: their outdated instances
    /// still need replacing, now under the new rollout. So are the services of a rollout that
    /// failed: they were not rolled out whole, and the new revision is healthy only once they are.
    mutating func startRollout(of name: String, services: [String], reason: String, revertOf: UInt64? = nil, at index: UInt64, time: Timestamp) {
        guard var record = applications[name] else { return }
        var rolled = Set(services)
        // An operator's pause holds until the operator resumes, whatever starts the next
        // rollout (a key change, another service's restart, an apply): as a paused Kubernetes
        // Deployment takes template changes without rolling them.
        let held = record.rollout?.phase == .paused
        if var previous = record.rollout, !previous.phase.isFinal || previous.phase == .failed {
            rolled.formUnion(previous.services.filter { record.services[$0] != nil })
            if !previous.phase.isFinal {
                previous.end(.superseded, "superseded by \(reason)", at: time)
                record.rollout = previous
            }
        }
        guard !rolled.isEmpty else {
            applications[name] = record
            return
        }
        let revision = record.currentRevision
        // Canaries only where there are old instances for them to stand beside.
        var canaries: [String: Int] = [:]
        for service in rolled {
            guard let count = record.service(named: service)?.update.canaries, count > 0 else { continue }
            let key = ServiceKey(name, service)
            if instances.values.contains(where: { $0.service == key && $0.isLive && !isCurrent($0) }) { canaries[service] = count }
        }
        var message = "revision \(revision): \(reason); rolling \(rolled.sorted().joined(separator: ", "))"
        if !canaries.isEmpty { message += "; canaries: " + canaries.keys.sorted().map { "\($0) \(canaries[$0] ?? 0)" }.joined(separator: ", ") }
        var rollout = Rollout(
            revision: revision, services: Array(rolled), startedIndex: index, startedAt: time, revertOf: revertOf, canaries: canaries, message: message)
        if held {
            rollout.phase = .paused
            rollout.record("paused, as the rollout it supersedes was; `deployctl rollout resume \(name)` goes on", at: time)
        }
        record.rollout = rollout
        applications[name] = record
    }

    /// An apply that changed services only in place: a running rollout goes on at the new
    /// revision (its instances moved to it), and a revision that was healthy stays so.
    mutating func carryRollout(of name: String, from previous: UInt64) {
        guard var record = applications[name] else { return }
        let current = record.currentRevision
        if var rollout = record.rollout, !rollout.phase.isFinal, rollout.revision == previous {
            rollout.revision = current
            record.rollout = rollout
        } else if record.lastHealthyRevision == previous, record.rollout?.phase != .failed {
            record.lastHealthyRevision = current
            record.markRolledOut(current, at: record.revisions.last?.appliedAt ?? .zero)
        }
        applications[name] = record
    }

    /// Applies the rollout steps of a committed plan, each to the rollout it was decided for.
    mutating func applyRolloutUpdates(_ updates: [RolloutUpdate], at index: UInt64, time: Timestamp) -> [AppliedRolloutStep] {
        var applied: [AppliedRolloutStep] = []
        for update in updates {
            guard var record = applications[update.application], var rollout = record.rollout,
                rollout.startedIndex == update.startedIndex, rollout.phase == .running
            else { continue }
            if let decided = update.replicas, decided != record.replicas(of: rollout.services) { continue }
            let message: String
            switch update.change {
            case .progressed(let updated):
                guard updated > rollout.updated else { continue }
                rollout.updated = updated
                rollout.progressAt = time
                message = "\(updated) instance\(updated == 1 ? "" : "s") updated"
                rollout.record(message, at: time)
            case .succeeded:
                // A service scaled to 0 (`stop`, `scale 0`) completes with nothing run: no proof
                // that the revision works, so it does not become the one to revert or undo to.
                let unproven = rollout.services.filter { (record.services[$0]?.replicas ?? 0) == 0 }.sorted()
                if unproven.isEmpty {
                    message = "revision \(rollout.revision) rolled out"
                    record.lastHealthyRevision = rollout.revision
                    record.markRolledOut(rollout.revision, at: time)
                } else {
                    message = "revision \(rollout.revision) rolled out; not recorded as healthy: \(unproven.joined(separator: ", ")) run no instance"
                }
                rollout.end(.succeeded, message, at: time)
            case .failed(let reason):
                message = "failed: \(reason)"
                rollout.end(.failed, message, at: time)
            case .awaitingPromotion:
                guard var canary = rollout.canary, !canary.promoted, !canary.awaitingPromotion else { continue }
                canary.awaitingPromotion = true
                rollout.canary = canary
                message = "canaries updated; waiting for `deployctl rollout promote \(update.application)`"
                rollout.record(message, at: time)
            case .promoted:
                guard var canary = rollout.canary, !canary.promoted else { continue }
                canary.promoted = true
                rollout.canary = canary
                rollout.progressAt = time
                message = "canaries updated and promoted (autoPromote)"
                rollout.record(message, at: time)
            }
            record.rollout = rollout
            record.modifiedIndex = index
            applications[update.application] = record
            applied.append(AppliedRolloutStep(update: update, message: message))
            if case .failed(let reason) = update.change { revertIfAsked(update.application, failed: rollout, reason: reason, at: index, time: time) }
        }
        return applied
    }

    /// `autoRevert`: a failed rollout of a service that asks for it applies the last revision
    /// that rolled out whole, as a new revision with a rollout of its own. A revert that fails
    /// is not reverted again: it stops where it is, as any failed rollout without `autoRevert`.
    private mutating func revertIfAsked(_ name: String, failed rollout: Rollout, reason: String, at index: UInt64, time: Timestamp) {
        guard let record = applications[name] else { return }
        let asking = rollout.services.filter { record.service(named: $0)?.update.autoRevert == true }
        guard !asking.isEmpty else { return }
        let refusal: String?
        if rollout.revertOf != nil {
            refusal = "it was itself a revert"
        } else if let target = record.lastHealthyRevision, target != rollout.revision, let revision = record.revision(target),
            Self.runs(revision, in: record)
        {
            refusal = "revision \(target)'s manifest is the one running"
        } else if let target = record.lastHealthyRevision, target != rollout.revision, let revision = record.revision(target) {
            do throws(ControllerError) {
                _ = try applyApplication(
                    revision.manifestJSON, expectedRevision: nil, at: index, time: time, origin: .revert(of: rollout.revision, reason: reason))
                refusal = nil
            } catch {
                refusal = "revision \(target) no longer applies: \(error)"
            }
        } else {
            refusal = "no earlier revision rolled out whole"
        }
        if let refusal { applications[name]?.rollout?.record("not reverted: \(refusal)", at: time) }
    }

    /// An operator's command to a rollout: pause, resume, undo.
    mutating func controlRollout(_ name: String, _ action: RolloutAction, at index: UInt64, time: Timestamp) throws(ControllerError) -> CommandResult {
        guard var record = applications[name] else { throw .applicationNotFound(name) }
        switch action {
        case .pause:
            guard var rollout = record.rollout, rollout.phase == .running else {
                throw .rolloutState(application: name, reason: "no rollout is running (\(Self.latest(record.rollout))); pause holds a running one")
            }
            rollout.phase = .paused
            rollout.record("paused", at: time)
            record.rollout = rollout
        case .resume:
            guard var rollout = record.rollout, rollout.phase == .paused else {
                throw .rolloutState(application: name, reason: "its rollout is not paused (\(Self.latest(record.rollout))); resume goes on with a paused one")
            }
            rollout.phase = .running
            rollout.resumedAt = time
            rollout.progressAt = time
            rollout.record("resumed", at: time)
            record.rollout = rollout
        case .promote:
            guard var rollout = record.rollout, rollout.phase == .running || rollout.phase == .paused else {
                throw .rolloutState(application: name, reason: "no rollout is running (\(Self.latest(record.rollout))); promote applies to one whose canaries wait")
            }
            guard var canary = rollout.canary else {
                throw .rolloutState(application: name, reason: "its rollout of revision \(rollout.revision) has no canaries to promote")
            }
            guard !canary.promoted else { throw .rolloutState(application: name, reason: "its canaries were promoted already") }
            guard canary.awaitingPromotion else {
                throw .rolloutState(
                    application: name, reason: "its canaries do not all count as updated yet; promote once `deployctl rollout status \(name)` says they wait")
            }
            canary.promoted = true
            rollout.canary = canary
            rollout.progressAt = time
            rollout.record("promoted", at: time)
            record.rollout = rollout
        case .undo(let requested):
            let revision = try undoTarget(of: record, requested: requested)
            _ = try applyApplication(revision.manifestJSON, expectedRevision: nil, at: index, time: time, origin: .undo(to: revision.number))
            let now = applications[name] ?? record
            return .rolloutControlled(name: name, phase: now.rollout?.phase ?? .succeeded, revision: now.currentRevision)
        }
        record.modifiedIndex = index
        applications[name] = record
        lastChangeIndex = index
        return .rolloutControlled(name: name, phase: record.rollout?.phase ?? .succeeded, revision: record.currentRevision)
    }

    /// The revision `undo` goes back to: `requested`, which must be kept, not current, and
    /// have rolled out whole; or the latest such revision before the current one.
    private func undoTarget(of record: ApplicationRecord, requested: UInt64?) throws(ControllerError) -> Revision {
        let name = record.name
        let healthy = record.revisions.filter { $0.rolledOutAt != nil }.map(\.number)
        let listed = healthy.isEmpty ? "none has" : "\(healthy.map(String.init).joined(separator: ", ")) did"
        guard let requested else {
            // The latest that would change something: one whose manifest is the running one
            // (an undo or a revert made it current again) is passed over.
            guard let target = record.revisions.last(where: {
                $0.rolledOutAt != nil && $0.number < record.currentRevision && !Self.runs($0, in: record)
            }) else {
                throw .revisionNotRolledOut(
                    application: name, reason: "no revision before \(record.currentRevision) rolled out whole with another manifest; undo has nothing to go back to")
            }
            return target
        }
        guard let target = record.revision(requested) else {
            throw .revisionNotFound(application: name, revision: requested, kept: record.revisions.map(\.number))
        }
        guard requested != record.currentRevision else {
            throw .revisionNotRolledOut(application: name, reason: "revision \(requested) is the current one; undo goes to an earlier revision")
        }
        guard target.rolledOutAt != nil else {
            throw .revisionNotRolledOut(
                application: name, reason: "revision \(requested) never rolled out whole (of those kept, \(listed)); undo goes only to one that did")
        }
        guard !Self.runs(target, in: record) else {
            throw .rolloutState(
                application: name, reason: "revision \(requested)'s manifest is the one revision \(record.currentRevision) runs; undo would change nothing")
        }
        return target
    }

    /// Whether `revision`'s manifest is what the application runs now (applying it again would
    /// change nothing; it would not even make a revision).
    static func runs(_ revision: Revision, in record: ApplicationRecord) -> Bool {
        guard let manifest = try? ManifestDecoder.decode(Array(revision.manifestJSON.utf8)) else { return false }
        return ApplicationDiff(from: record.application, to: manifest).isEmpty
    }

    /// The latest rollout in words, for refusals: "its latest, of revision 3, succeeded".
    private static func latest(_ rollout: Rollout?) -> String {
        guard let rollout else { return "it has had none" }
        return "its latest, of revision \(rollout.revision), \(rollout.phase.rawValue)"
    }
}

/// How an earlier revision's manifest came back as a new revision.
enum RevisionOrigin {
    /// `autoRevert` after the rollout of revision `of` failed, for `reason`.
    case revert(of: UInt64, reason: String)
    /// `deployctl rollout undo`, to revision `to`.
    case undo(to: UInt64)

    /// What the revision's history says.
    var summary: String {
        switch self {
        case .revert(let failed, _): "reverts revision \(failed)"
        case .undo(let target): "undo to revision \(target)"
        }
    }

    /// Why its rollout started.
    var reason: String {
        switch self {
        case .revert(let failed, let why): "reverts revision \(failed), whose rollout failed: \(why)"
        case .undo(let target): "undo to revision \(target)"
        }
    }

    /// The failed revision, for a revert.
    var reverted: UInt64? {
        if case .revert(let failed, _) = self { return failed }
        return nil
    }
}

extension ApplicationRecord {
    /// The `replicas` of each of `services` the application has.
    func replicas(of services: [String]) -> [String: Int] {
        services.reduce(into: [:]) { counts, name in
            if let service = self.services[name] { counts[name] = service.replicas }
        }
    }

    /// Records that revision `number` rolled out whole.
    mutating func markRolledOut(_ number: UInt64, at time: Timestamp) {
        guard let position = revisions.firstIndex(where: { $0.number == number }), revisions[position].rolledOutAt == nil else { return }
        revisions[position].rolledOutAt = time
    }
}
