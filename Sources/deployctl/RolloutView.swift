import AgentAPI
import Foundation
import Manifest

/// An application's rollout as `deployctl rollout status` shows it: the cluster's record of it
/// (phase, progress, events), per service how far its instances are, and for a new instance
/// not ready yet how long it has left before its `healthyDeadline`.
struct RolloutView {
    enum Outcome: Equatable {
        case running, paused, awaitingPromotion, succeeded, failed, reverted
    }

    let application: ApplicationInfo
    let manifest: Application?
    let instances: [InstanceInfo]

    /// The application and its instances, after `index` (a blocking query) when given.
    static func fetch(_ name: String, client: AgentClient, after index: Int64?) async throws(CommandFailure) -> (RolloutView, Int64) {
        let (instances, stateIndex) = try await client.perform(timeout: .seconds(40)) { api in
            let answer = try await api.listInstances(query: .init(index: index, wait: index == nil ? nil : "30s", application: name)).ok
            return (try answer.body.json, answer.headers.xFlotillaIndex)
        }
        let info = try await client.perform { api in try await api.getApplication(path: .init(name: name), query: .init(detail: true)).ok.body.json }
        let manifest = info.manifest.flatMap { try? ManifestDecoder.decode(Array($0.utf8)) }
        return (RolloutView(application: info, manifest: manifest, instances: instances.filter { $0.desired == .run }), stateIndex)
    }

    var outcome: Outcome {
        guard let rollout = application.rollout else { return .succeeded }
        if rollout.revertOf != nil, rollout.phase != .running, rollout.phase != .paused { return .reverted }
        switch rollout.phase {
        case .running: return rollout.awaitingPromotion == true && rollout.promoted != true ? .awaitingPromotion : .running
        case .paused: return .paused
        case .succeeded: return .succeeded
        case .failed, .superseded: return .failed
        }
    }

    func render(_ out: Terminal, now: Date) -> String {
        guard let rollout = application.rollout else { return "\(application.name): revision \(application.revision), no rollout recorded\n" }
        var text = "\(out.paint(application.name, .bold)): revision \(rollout.revision), rollout \(paint(rollout.phase, out))"
        if let reverted = rollout.revertOf { text += " (reverting revision \(reverted))" }
        text += ", started \(Self.ago(rollout.startedAt, now: now))\n"
        for name in rollout.services {
            text += line(for: name, revision: rollout.revision, out)
        }
        if let canaries = rollout.canaries?.additionalProperties, !canaries.isEmpty {
            let counts = canaries.keys.sorted().map { "\($0) \(canaries[$0] ?? 0)" }.joined(separator: ", ")
            let state =
                rollout.promoted == true
                ? "promoted" : rollout.awaitingPromotion == true ? "up; waiting for `deployctl rollout promote \(application.name)`" : "starting"
            text += "  canaries (\(counts)): \(state)\n"
        }
        if rollout.phase == .running {
            text += waiting(revision: rollout.revision, now: now).map { "  waiting: \($0)\n" }.joined()
            // Slots the scheduler could not fill have no instance to list, only a reason.
            for service in application.services where rollout.services.contains(service.name) {
                text += service.unplaced.map { "  waiting: \(service.name): cannot place \($0)\n" }.joined()
            }
        }
        if let message = rollout.message { text += "  \(message)\n" }
        for event in rollout.events.suffix(6) {
            text += "  \(out.paint(Self.clock(event.time), .dim)) \(event.message)\n"
        }
        return text
    }

    /// A progress bar of one service: new instances ready, the rest to go, old ones left.
    private func line(for name: String, revision: Int64, _ out: Terminal) -> String {
        let wanted = application.services.first { $0.name == name }?.replicas ?? 0
        let mine = instances.filter { $0.service == name }
        let new = mine.filter { $0.revision >= revision }
        let ready = new.filter { $0.status == .healthy || ($0.status == .running && isExecReady(name)) }.count
        let old = mine.count - new.count
        let width = 20
        let filled = wanted == 0 ? width : min(width, ready * width / wanted)
        let bar = out.paint(String(repeating: "█", count: filled), .green) + String(repeating: "░", count: width - filled)
        var detail = "\(ready)/\(wanted) new ready"
        if new.count > ready { detail += ", \(new.count - ready) starting" }
        if old > 0 { detail += ", \(old) old left" }
        return "  \(name.padding(toLength: max(12, name.count), withPad: " ", startingAt: 0)) \(bar) \(detail)\n"
    }

    /// Each new instance not ready yet: how long it has been, of its deadline, and its last event.
    private func waiting(revision: Int64, now: Date) -> [String] {
        instances.filter { $0.revision >= revision && $0.status != .healthy && !($0.status == .running && isExecReady($0.service)) }
            .sorted { ($0.service, $0.index) < ($1.service, $1.index) }
            .map { instance in
                let created = instance.events.first.map { Date(timeIntervalSince1970: Double($0.time) / 1000) } ?? now
                let age = Duration.seconds(max(0, Int64(now.timeIntervalSince(created))))
                let deadline = manifest?.service(named: instance.service)?.update.healthyDeadline
                let of = deadline.map { " of its \(DurationText.formatRounded($0)) deadline" } ?? ""
                // Its latest failed check or exit says more than the relaunch that followed it
                // (as RolloutStanding.detail chooses).
                let telling = instance.events.last { ![.pending, .running, .healthy].contains($0.status) } ?? instance.events.last
                let last = telling.map { ": \($0.message)" } ?? ""
                return "\(instance.service)[\(instance.index)] \(instance.status.rawValue) after \(DurationText.formatRounded(age))\(of)\(last)"
            }
    }

    private func isExecReady(_ service: String) -> Bool {
        manifest?.service(named: service)?.readinessMode == .exec
    }

    private func paint(_ phase: RolloutInfo.PhasePayload, _ out: Terminal) -> String {
        switch phase {
        case .succeeded: out.paint(phase.rawValue, .green)
        case .failed, .superseded: out.paint(phase.rawValue, .red)
        case .paused: out.paint(phase.rawValue, .yellow)
        case .running: phase.rawValue
        }
    }

    /// A time as the operator's clock shows it.
    static func clock(_ unixMilliseconds: Int64) -> String {
        let formatter = DateFormatter()
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: Double(unixMilliseconds) / 1000))
    }

    static func ago(_ unixMilliseconds: Int64, now: Date) -> String {
        let seconds = max(0, Int64(now.timeIntervalSince1970 * 1000) - unixMilliseconds) / 1000
        return "\(DurationText.formatRounded(.seconds(seconds))) ago"
    }
}
