import AgentAPI
import Controller

/// Turns an applied command and its result into the events people see in `deployctl events`
/// and the event stream.
enum ClusterEventDescriber {
    static func events(for command: ControllerCommand, result: CommandResult, at index: UInt64, time: Timestamp, in state: ClusterState) -> [ClusterEvent] {
        let millis = time.unixMilliseconds
        switch result {
        case .applicationApplied(let name, let revision, let diff):
            var parts: [String] = []
            if !diff.added.isEmpty { parts.append("created \(diff.added.joined(separator: ", "))") }
            if !diff.replaced.isEmpty { parts.append("replacing \(diff.replaced.joined(separator: ", "))") }
            if !diff.updatedInPlace.isEmpty { parts.append("updated \(diff.updatedInPlace.joined(separator: ", "))") }
            if !diff.removed.isEmpty { parts.append("removed \(diff.removed.joined(separator: ", "))") }
            let detail = parts.isEmpty ? "" : ": " + parts.joined(separator: "; ")
            return [ClusterEvent(index: index, time: millis, kind: "application.applied", application: name, message: "revision \(revision)\(detail)")]
        case .applicationDeleted(let name, let stopping):
            return [ClusterEvent(index: index, time: millis, kind: "application.deleted", application: name, message: "deleted; stopping \(stopping.count) instance\(stopping.count == 1 ? "" : "s")")]
        case .serviceScaled(let key, let replicas):
            return [ClusterEvent(index: index, time: millis, kind: "service.scaled", application: key.application, service: key.service, message: "scaled to \(replicas)")]
        case .serviceRestarted(let key, _):
            return [ClusterEvent(index: index, time: millis, kind: "service.restarted", application: key.application, service: key.service, message: "restarting every instance")]
        case .nodeUpdated(let name, let status):
            // A heartbeat is routine; only registrations and status changes are news.
            if case .nodeHeartbeat = command { return [] }
            return [ClusterEvent(index: index, time: millis, kind: "node.updated", node: name, message: "node is \(status.rawValue)")]
        case .planCommitted(let outcome):
            var events: [ClusterEvent] = []
            for id in outcome.placed {
                guard let instance = state.instances[id] else { continue }
                let ports = instance.ports.map(\.description).joined(separator: " ")
                events.append(ClusterEvent(
                    index: index, time: millis, kind: "instance.placed", application: instance.service.application, service: instance.service.service,
                    instance: id, node: instance.node, message: "placed on \(instance.node)\(ports.isEmpty ? "" : " (\(ports))")"))
            }
            for id in outcome.stopped {
                let instance = state.instances[id]
                events.append(ClusterEvent(
                    index: index, time: millis, kind: "instance.stopping", application: instance?.service.application, service: instance?.service.service,
                    instance: id, node: instance?.node, message: instance?.stopReason ?? "told to stop"))
            }
            for rejection in outcome.rejected {
                events.append(ClusterEvent(
                    index: index, time: millis, kind: "placement.rejected", application: rejection.placement.service.application,
                    service: rejection.placement.service.service, node: rejection.placement.node, message: rejection.reason))
            }
            events += rolloutEvents(outcome.rollouts, at: index, millis: millis, in: state)
            return events
        case .rolloutControlled(let name, _, let revision):
            guard case .controlRollout(_, let action) = command else { return [] }
            let (kind, message) =
                switch action {
                case .pause: ("rollout.paused", "rollout paused")
                case .resume: ("rollout.resumed", "rollout resumed")
                case .promote: ("rollout.promoted", "canaries promoted")
                case .undo: ("rollout.undone", state.applications[name]?.revisions.last?.origin.map { "revision \(revision): \($0)" } ?? "already at that revision's manifest")
                }
            return [ClusterEvent(index: index, time: millis, kind: kind, application: name, message: message)]
        case .memberUpdated(let id):
            let member = state.members[id]
            return [ClusterEvent(
                index: index, time: millis, kind: "member.updated", node: member?.name,
                message: "server member \(id) at \(member?.address ?? "an unknown address")")]
        case .memberRemoved(let id):
            return [ClusterEvent(index: index, time: millis, kind: "member.removed", message: "server member \(id) removed")]
        case .joinTokenSet:
            // Never the token itself: events are readable wherever the API is.
            return [ClusterEvent(index: index, time: millis, kind: "cluster.tokenRotated", message: "the join token was set; the previous one no longer admits")]
        case .statusRecorded:
            guard case .reportInstanceStatus(let node, let reports) = command else { return [] }
            return reports.map { report in
                let instance = state.instances[report.id]
                let message = report.message.isEmpty ? report.status.rawValue : "\(report.status.rawValue): \(report.message)"
                return ClusterEvent(
                    index: index, time: millis, kind: "instance.status", application: instance?.service.application, service: instance?.service.service,
                    instance: report.id, node: node, message: message)
            }
        case .kvTransactionApplied:
            // Key-value writes are the users' data, not news of the cluster (neither Consul
            // nor etcd lists them as events); their changes are watched on the keys.
            return []
        case .rejected:
            return []
        }
    }

    /// The rollout steps a committed plan took; a failure that `autoRevert` answered at once
    /// also says so.
    private static func rolloutEvents(_ steps: [AppliedRolloutStep], at index: UInt64, millis: Int64, in state: ClusterState) -> [ClusterEvent] {
        steps.flatMap { step -> [ClusterEvent] in
            let name = step.update.application
            let kind: String
            switch step.update.change {
            case .progressed: kind = "rollout.progressed"
            case .succeeded: kind = "rollout.succeeded"
            case .failed: kind = "rollout.failed"
            case .awaitingPromotion: kind = "rollout.awaitingPromotion"
            case .promoted: kind = "rollout.promoted"
            }
            var events = [ClusterEvent(index: index, time: millis, kind: kind, application: name, message: step.message)]
            if case .failed = step.update.change, let revert = state.applications[name]?.rollout, revert.startedIndex == index, revert.revertOf != nil {
                events.append(ClusterEvent(index: index, time: millis, kind: "rollout.reverted", application: name, message: revert.events.first?.message ?? ""))
            }
            return events
        }
    }
}
