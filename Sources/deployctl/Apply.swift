import AgentAPI
import ArgumentParser
import Foundation
import Manifest

/// `deployctl apply -f FILE`: validate, show the plan, apply, then follow the rollout until every
/// instance is up or one fails.
struct Apply: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply a manifest: validate it, show what will change, apply it, and follow the rollout.",
        discussion: """
            Exit status: 0 when every instance of the new revision is up (batch jobs: completed); \
            1 when the manifest is refused or an instance fails; 2 usage or unreadable file; \
            3 agent unreachable; 4 still rolling out when --timeout ran out.
            """)

    @OptionGroup var connection: ConnectionOptions

    @Option(name: .short, help: "The manifest file (\"-\" for standard input).")
    var file: String

    @Flag(help: "Show what would change, and change nothing.")
    var dryRun = false

    @Flag(help: "Return once the change is committed, without following the rollout.")
    var noWait = false

    @Option(help: "Check-and-set: apply only if the application is at this revision (0: it must not exist yet).")
    var revision: UInt64?

    @Option(help: "How long to follow the rollout, e.g. 5m.")
    var timeout: String = "5m"

    @Option(name: .shortAndLong, help: "Output format: text or json.")
    var output: OutputFormat = .text

    func run() async throws {
        let out = Terminal.standardOutput
        let bytes: [UInt8]
        do {
            bytes = try readFileBytes(file)
        } catch {
            Terminal.standardError.write("deployctl: \(error)\n")
            throw ExitCode(2)
        }
        let followFor: Duration
        do {
            followFor = try DurationText.parse(timeout)
        } catch {
            Terminal.standardError.write("deployctl: --timeout \(error.message)\n")
            throw ExitCode(2)
        }
        // Validate locally first: the same checks the agent runs, without a round trip.
        let application: Application
        do {
            application = try ManifestDecoder.decode(bytes)
        } catch {
            out.write("\(out.paint("invalid", .red))  \(file): \(error.issues.count) problem\(error.issues.count == 1 ? "" : "s")\n")
            for issue in error.issues { out.write("  \(out.paint(issue.path.description, .bold)): \(issue.message)\n") }
            throw ExitCode(1)
        }
        let client = connection.client()
        let name = application.name
        let expected = revision.map { Int64(clamping: $0) }
        try await reportFailures {
            let preview = try await client.perform(sendingManifest: bytes) { api in
                try await api.applyApplication(
                    path: .init(name: name), query: .init(revision: expected, dryRun: true), body: .json(.init())
                ).ok.body.json
            }
            if output == .text { out.write(Self.planText(preview, out)) }
            if dryRun {
                if output == .json { out.write(jsonText(preview)) }
                return
            }
            if preview.isNoChange {
                if output == .json { out.write(jsonText(preview)) }
                if output == .text { out.write("Nothing to change: \(application.name) is at revision \(preview.revision).\n") }
                if noWait { return }
            }
            let result = preview.isNoChange
                ? preview
                : try await client.perform(sendingManifest: bytes) { api in
                    try await api.applyApplication(path: .init(name: name), query: .init(revision: expected), body: .json(.init())).ok.body.json
                }
            if output == .json, !preview.isNoChange { out.write(jsonText(result)) }
            if output == .text, !preview.isNoChange { out.write("Applied \(application.name) revision \(result.revision) (log index \(result.index)).\n") }
            if noWait { return }
            let outcome = try await RolloutFollower(client: client, application: application, revision: UInt64(result.revision), terminal: output == .text ? out : nil)
                .follow(for: followFor)
            switch outcome {
            case .complete:
                return
            case .awaitingPromotion:
                out.write("Canaries of \(application.name) revision \(result.revision) are up; the rollout waits: `deployctl rollout promote \(application.name)` to go on, `deployctl rollout undo \(application.name)` to go back.\n")
            case .failed(let reason):
                throw CommandFailure.failed(reason)
            case .timedOut(let summary):
                Terminal.standardError.write("deployctl: still rolling out after \(timeout): \(summary); follow with `deployctl status \(application.name)`\n")
                throw ExitCode(4)
            }
        }
    }

    static func planText(_ plan: ApplyResult, _ out: Terminal) -> String {
        var text = "Plan for \(out.paint(plan.application, .bold)):\n"
        for name in plan.created { text += "  \(out.paint("+ create", .green))   \(name)\n" }
        for name in plan.replaced { text += "  \(out.paint("~ replace", .yellow))  \(name) (new instances replace the running ones)\n" }
        for name in plan.updatedInPlace { text += "  \(out.paint("~ update", .yellow))   \(name) (in place: instances keep running)\n" }
        for name in plan.removed { text += "  \(out.paint("- stop", .red))     \(name)\n" }
        for name in plan.unchanged { text += "  \(out.paint("= keep", .dim))     \(name)\n" }
        return text
    }
}
