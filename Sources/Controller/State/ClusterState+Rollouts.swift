import Manifest

extension ClusterState {
    /// Starts a rollout of `services` of application `name` at its current revision. A rollout
    /// still running is superseded and its services carried over: their outdated instances
    /// still need replacing, now under the new rollout.
    mutating func startRollout(of name: String, services: [String], reason: String, revertOf: UInt64? = nil, at index: UInt64, time: Timestamp) {
        guard var record = applications[name] else { return }
        var rolled = Set(services)
        if var previous = record.rollout, previous.phase == .running {
            rolled.formUnion(previous.services.filter { record.services[$0] != nil })
            previous.end(.superseded, "superseded by \(reason)", at: time)
            record.rollout = previous
        }
        guard !rolled.isEmpty else {
            applications[name] = record
            return
        }
        let revision = record.currentRevision
        record.rollout = Rollout(
            revision: revision, services: Array(rolled), startedIndex: index, startedAt: time, revertOf: revertOf,
            message: "revision \(revision): \(reason); rolling \(rolled.sorted().joined(separator: ", "))")
        applications[name] = record
    }

    /// An apply that changed services only in place: a running rollout goes on at the new
    /// revision (its instances moved to it), and a revision that was healthy stays so.
    mutating func carryRollout(of name: String, from previous: UInt64) {
        guard var record = applications[name] else { return }
        let current = record.currentRevision
        if var rollout = record.rollout, rollout.phase == .running, rollout.revision == previous {
            rollout.revision = current
            record.rollout = rollout
        } else if record.lastHealthyRevision == previous, record.rollout?.phase != .failed {
            record.lastHealthyRevision = current
        }
        applications[name] = record
    }

    /// Applies the rollout steps of a committed plan, each to the rollout it was decided for.
    mutating func applyRolloutUpdates(_ updates: [RolloutUpdate], at index: UInt64, time: Timestamp) -> Bool {
        var changed = false
        for update in updates {
            guard var record = applications[update.application], var rollout = record.rollout,
                rollout.startedIndex == update.startedIndex, rollout.phase == .running
            else { continue }
            switch update.change {
            case .progressed(let updated):
                guard updated > rollout.updated else { continue }
                rollout.updated = updated
                rollout.progressAt = time
                rollout.record("\(updated) instance\(updated == 1 ? "" : "s") updated", at: time)
            case .succeeded:
                rollout.end(.succeeded, "revision \(rollout.revision) rolled out", at: time)
                record.lastHealthyRevision = rollout.revision
            case .failed(let reason):
                rollout.end(.failed, "failed: \(reason)", at: time)
            }
            record.rollout = rollout
            record.modifiedIndex = index
            applications[update.application] = record
            changed = true
            if case .failed(let reason) = update.change { revertIfAsked(update.application, failed: rollout, reason: reason, at: index, time: time) }
        }
        return changed
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
        } else if let target = record.lastHealthyRevision, target != rollout.revision, let revision = record.revision(target) {
            do throws(ControllerError) {
                _ = try applyApplication(revision.manifestJSON, expectedRevision: nil, at: index, time: time, revert: (rollout.revision, reason))
                refusal = nil
            } catch {
                refusal = "revision \(target) no longer applies: \(error)"
            }
        } else {
            refusal = "no earlier revision rolled out whole"
        }
        if let refusal { applications[name]?.rollout?.record("not reverted: \(refusal)", at: time) }
    }
}
