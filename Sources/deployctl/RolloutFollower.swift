import AgentAPI
import Foundation
import Manifest

/// Follows a rollout with blocking queries until every service's instances of the new revision
/// are up, one fails, or time runs out; draws progress on a terminal as it goes.
struct RolloutFollower {
    enum Outcome {
        case complete
        /// The revision's canaries are up and the rollout waits for an operator.
        case awaitingPromotion
        case failed(String)
        case timedOut(String)
    }

    let client: AgentClient
    let application: Application
    let revision: UInt64
    /// Where progress is drawn; nil for none (JSON output).
    let terminal: Terminal?

    func follow(for limit: Duration) async throws(CommandFailure) -> Outcome {
        let deadline = ContinuousClock.now + limit
        var index: Int64 = 0
        var drawnLines = 0
        var lastText = ""
        var unplacedSince: ContinuousClock.Instant?
        var pacer = FollowPacer()
        while true {
            let remaining = deadline - ContinuousClock.now
            let wait = max(.milliseconds(100), min(remaining, .seconds(10)))
            let name = application.name
            let since = index == 0 ? nil : index
            let waitText = "\(max(1, wait.components.seconds))s"
            let asked = ContinuousClock.now
            let (instances, stateIndex) = try await client.perform(timeout: wait + .seconds(10)) { api in
                let answer = try await api.listInstances(query: .init(index: since, wait: waitText, application: name)).ok
                return (try answer.body.json, answer.headers.xFlotillaIndex)
            }
            let pause = pacer.afterAnswer(changed: stateIndex != index, took: ContinuousClock.now - asked, ofAWait: wait)
            index = stateIndex
            let info = try await client.perform { api in try await api.getApplication(path: .init(name: name)).ok.body.json }
            let progress = RolloutProgress(application: application, status: info, instances: instances, revision: revision)
            if let terminal {
                let text = progress.render(terminal)
                if text != lastText {
                    if terminal.isInteractive, drawnLines > 0 {
                        // Redraw in place: move up over the previous block and clear it.
                        terminal.write("\u{1B}[\(drawnLines)F\u{1B}[J")
                    }
                    terminal.write(text)
                    drawnLines = text.split(separator: "\n", omittingEmptySubsequences: false).count - 1
                    lastText = text
                }
            }
            if let failure = progress.failure ?? Self.failure(of: info.rollout, revision: revision) { return .failed(failure) }
            if let rollout = info.rollout, UInt64(clamping: rollout.revision) == revision {
                if rollout.phase == .running, rollout.awaitingPromotion == true, rollout.promoted != true { return .awaitingPromotion }
                if rollout.phase == .paused {
                    return .failed("the rollout of revision \(revision) is paused; `deployctl rollout resume \(name)` goes on with it")
                }
            }
            // Complete once the instances are up and the cluster's rollout of this revision
            // (if it has one) says so: its new instances stayed ready for minHealthyTime.
            if progress.isComplete, Self.hasEnded(info.rollout, revision: revision) {
                terminal?.write(terminal.map { $0.paint("✔", .green) } ?? "")
                terminal?.write(" \(application.name) revision \(revision): every instance is up.\n")
                return .complete
            }
            if let unplaced = progress.unplaced {
                let since = unplacedSince ?? ContinuousClock.now
                unplacedSince = since
                // The scheduler retries on every change; give nodes a moment to register or free up.
                if ContinuousClock.now - since > .seconds(5) { return .failed("instances cannot be placed: \(unplaced)") }
            } else {
                unplacedSince = nil
            }
            if ContinuousClock.now >= deadline { return .timedOut(progress.summary) }
            if pause > .zero { try? await Task.sleep(for: min(pause, deadline - ContinuousClock.now)) }
        }
    }

    /// Whether the cluster's rollout of `revision`, if it has one, is over.
    static func hasEnded(_ rollout: RolloutInfo?, revision: UInt64) -> Bool {
        guard let rollout, UInt64(clamping: rollout.revision) == revision else { return true }
        return rollout.phase != .running
    }

    /// What the cluster's rollout says about revision `revision`: failed, or reverted.
    static func failure(of rollout: RolloutInfo?, revision: UInt64) -> String? {
        guard let rollout else { return nil }
        if rollout.revertOf.map({ UInt64(clamping: $0) }) == revision {
            let why = rollout.events.first?.message ?? ""
            return "the rollout of revision \(revision) failed and was reverted: \(why)"
        }
        guard UInt64(clamping: rollout.revision) == revision, rollout.phase == .failed else { return nil }
        let note = rollout.events.last.map { $0.message.hasPrefix("not reverted") ? " (\($0.message))" : "" } ?? ""
        return "the rollout of revision \(revision) \(rollout.message ?? "failed")\(note)"
    }
}

/// Where a rollout stands, from the application's status and its instances.
struct RolloutProgress {
    struct ServiceLine {
        var name: String
        var wanted: Int
        var up: Int
        var starting: Int
        var old: Int
        var isBatch: Bool
    }

    var lines: [ServiceLine] = []
    var failure: String?
    var unplaced: String?

    init(application: Application, status: ApplicationInfo, instances: [InstanceInfo], revision: UInt64) {
        // With a rollout of this revision, its services are what this apply changed: another
        // service's failed instance (a batch run that failed, a server that gave up restarting,
        // moved to the new revision unchanged) is not this revision's doing.
        let rolled = status.rollout.flatMap { UInt64(clamping: $0.revision) == revision ? Set($0.services) : nil }
        for service in application.services where rolled?.contains(service.name) ?? true {
            let wanted = status.services.first { $0.name == service.name }?.replicas ?? service.replicas
            let mine = instances.filter { $0.service == service.name && $0.desired == .run }
            let current = mine.filter { UInt64(clamping: $0.revision) >= revision }
            let isBatch = service.restart.policy == .never
            let up = current.filter { instance in
                switch instance.status {
                case .healthy: true
                case .running: service.health == nil && !isBatch
                case .completed: isBatch
                default: false
                }
            }.count
            let old = mine.filter { UInt64(clamping: $0.revision) < revision && ![.stopped, .completed, .failed].contains($0.status) }.count
            lines.append(ServiceLine(name: service.name, wanted: wanted, up: up, starting: current.count - up, old: old, isBatch: isBatch))
            if let failed = current.first(where: { $0.status == .failed }) {
                let event = failed.events.last.map { ": \($0.message)" } ?? ""
                failure = "instance \(failed.id) of \(service.name) failed\(event)"
            }
            if let reasons = status.services.first(where: { $0.name == service.name })?.unplaced, !reasons.isEmpty {
                unplaced = "\(service.name): " + reasons.joined(separator: "; ")
            }
        }
    }

    var isComplete: Bool {
        lines.allSatisfy { $0.up >= $0.wanted && $0.old == 0 }
    }

    var summary: String {
        lines.map { "\($0.name) \($0.up)/\($0.wanted) up" }.joined(separator: ", ")
    }

    func render(_ out: Terminal) -> String {
        var text = ""
        for line in lines {
            let width = 20
            let filled = line.wanted == 0 ? width : min(width, line.up * width / max(line.wanted, 1))
            let bar = out.paint(String(repeating: "█", count: filled), .green) + String(repeating: "░", count: width - filled)
            var detail = "\(line.up)/\(line.wanted) \(line.isBatch ? "completed" : "up")"
            if line.starting > 0 { detail += ", \(line.starting) starting" }
            if line.old > 0 { detail += ", \(line.old) old to replace" }
            text += "  \(line.name.padding(toLength: max(12, line.name.count), withPad: " ", startingAt: 0)) \(bar) \(detail)\n"
        }
        return text
    }
}
