import AgentAPI
import ArgumentParser
import Foundation
import Manifest

/// `deployctl rollout status|pause|resume|undo|history APP`: an application's rollout (the
/// replacement of its instances by a revision), followed and steered.
struct RolloutCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rollout", abstract: "Follow and steer an application's rollout.",
        subcommands: [
            RolloutStatus.self, RolloutPause.self, RolloutResume.self, RolloutPromote.self, RolloutUndo.self, RolloutHistory.self, RolloutRestart.self,
        ])
}

/// `deployctl rollout status APP`: live until the rollout ends; the exit status says how.
struct RolloutStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show an application's rollout, live until it ends.",
        discussion: """
            Exit status: 0 succeeded; 1 failed; 5 the revision failed and was reverted (autoRevert); \
            6 paused; 7 its canaries wait for promotion; 4 still running when --timeout ran out.
            """)

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION (or APPLICATION/SERVICE: the application's rollout).") var reference: ServiceReference
    @Flag(help: "Show where it stands now and return, without following it.") var noFollow = false
    @Option(help: "How long to follow it, e.g. 10m.") var timeout: String = "10m"

    func validate() throws {
        do {
            _ = try DurationText.parse(timeout)
        } catch {
            throw ValidationError("--timeout \(error.message)")
        }
    }

    func run() async throws {
        var outcome: RolloutView.Outcome = .running
        let limit = (try? DurationText.parse(timeout)) ?? .seconds(600)
        try await reportFailures {
            let client = connection.client()
            let deadline = ContinuousClock.now + limit
            var index: Int64?
            var drawn = 0
            let out = Terminal.standardOutput
            while true {
                let (view, stateIndex) = try await RolloutView.fetch(reference.application, client: client, after: index)
                index = stateIndex
                outcome = view.outcome
                let finished = noFollow || outcome != .running || ContinuousClock.now >= deadline
                // A terminal is redrawn in place at every change; a pipe gets the last state only.
                if out.isInteractive || finished {
                    let text = view.render(out, now: Date())
                    if out.isInteractive, drawn > 0 { out.write("\u{1B}[\(drawn)F\u{1B}[J") }
                    out.write(text)
                    drawn = text.split(separator: "\n", omittingEmptySubsequences: false).count - 1
                }
                if finished { break }
            }
        }
        switch outcome {
        case .succeeded: return
        case .failed: throw ExitCode(1)
        case .reverted: throw ExitCode(5)
        case .paused: throw ExitCode(6)
        case .awaitingPromotion: throw ExitCode(7)
        case .running: if !noFollow { throw ExitCode(4) }
        }
    }
}

/// `deployctl rollout pause APP`.
struct RolloutPause: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pause", abstract: "Hold a running rollout: instances starting go on, no further one is replaced, no deadline runs.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION.") var reference: ServiceReference

    func run() async throws {
        try await sendRolloutCommand(connection) { api in try await api.pauseRollout(path: .init(name: reference.application)).ok.body.json }
    }
}

/// `deployctl rollout resume APP`.
struct RolloutResume: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Go on with a paused rollout; its progress deadline starts again.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION.") var reference: ServiceReference

    func run() async throws {
        try await sendRolloutCommand(connection) { api in try await api.resumeRollout(path: .init(name: reference.application)).ok.body.json }
    }
}

/// `deployctl rollout promote APP`.
struct RolloutPromote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "promote", abstract: "Let a rollout whose canaries are up replace the rest of the old instances.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION.") var reference: ServiceReference

    func run() async throws {
        try await sendRolloutCommand(connection) { api in try await api.promoteRollout(path: .init(name: reference.application)).ok.body.json }
    }
}

/// `deployctl rollout restart APP/SERVICE`: `deployctl restart` under the rollout commands, as
/// `kubectl rollout restart`.
struct RolloutRestart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restart", abstract: "Re-create every instance of a service at the same revision, under its update strategy.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION/SERVICE.") var reference: ServiceReference

    func run() async throws {
        try await sendRolloutCommand(connection) { api in
            try await api.restartService(path: .init(name: reference.application, service: reference.service)).ok.body.json
        }
    }
}

/// `deployctl rollout undo APP [--to-revision N]`.
struct RolloutUndo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "undo",
        abstract: "Go back to an earlier revision that rolled out whole, as a new revision with a rollout of its own.",
        discussion: "Without --to-revision: the latest revision before the current one that rolled out whole (`rollout history` marks them).")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION.") var reference: ServiceReference
    @Option(help: "The revision to go back to.") var toRevision: Int64?

    func validate() throws {
        if let toRevision, toRevision < 1 { throw ValidationError("--to-revision \(toRevision) is not a revision; revisions start at 1") }
    }

    func run() async throws {
        try await sendRolloutCommand(connection) { api in
            try await api.undoRollout(path: .init(name: reference.application), body: .json(.init(toRevision: toRevision))).ok.body.json
        }
    }
}

/// `deployctl rollout history APP`.
struct RolloutHistory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "history", abstract: "List an application's kept revisions and which of them rolled out whole.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION.") var reference: ServiceReference

    func run() async throws {
        try await reportFailures {
            let info = try await connection.client().perform { api in
                try await api.getApplication(path: .init(name: reference.application), query: .init(detail: true)).ok.body.json
            }
            var table = Table("REVISION", "APPLIED", "ROLLED OUT", "ORIGIN")
            for revision in info.revisions ?? [] {
                let current = revision.number == info.revision ? " (current)" : ""
                table.add(
                    "\(revision.number)\(current)", RolloutView.clock(revision.appliedAt), revision.rolledOutAt.map(RolloutView.clock) ?? "no",
                    revision.origin ?? "apply")
            }
            Terminal.standardOutput.write(table.render(Terminal.standardOutput))
        }
    }
}

/// Sends one rollout command and prints the agent's answer.
private func sendRolloutCommand(_ connection: ConnectionOptions, _ call: (Client) async throws -> CommandOutcome) async throws {
    try await reportFailures {
        let outcome = try await connection.client().perform(call)
        Terminal.standardOutput.write(outcome.message + "\n")
    }
}
