import ArgumentParser

/// The operator's command line.
struct Deployctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deployctl",
        abstract: "Deploy and operate services on a Flotilla cluster.",
        discussion: """
            Exit status: 0 success; 1 the request was understood but refused or failed \
            (e.g. an invalid manifest, a failed instance); 2 usage error or a file that cannot be \
            read; 3 the agent cannot be reached; 4 a rollout still running when --timeout ran out; \
            5 a rollout that failed and was reverted; 6 a paused rollout (`rollout status`).
            """,
        version: FlotillaVersion.current,
        subcommands: [
            Apply.self, Status.self, Describe.self, Logs.self, Scale.self, Restart.self, Stop.self, Delete.self, Upgrade.self, RolloutCommand.self,
            Events.self,
            Nodes.self, Images.self, Services.self, KV.self, ClusterCommand.self, Validate.self, Schema.self, Version.self,
        ])
}

/// The version every Flotilla binary reports.
enum FlotillaVersion {
    static let current = "0.1.0"
}
