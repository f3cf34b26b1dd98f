import ArgumentParser

/// The operator's command line.
struct Deployctl: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deployctl",
        abstract: "Deploy and operate services on a Flotilla cluster.",
        discussion: """
            Exit status: 0 success; 1 the request was understood but refused or failed \
            (e.g. an invalid manifest); 2 usage error or a file that cannot be read.
            """,
        version: FlotillaVersion.current,
        subcommands: [Validate.self, Schema.self])
}

/// The version every Flotilla binary reports.
enum FlotillaVersion {
    static let current = "0.1.0"
}
