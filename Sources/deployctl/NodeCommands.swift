import AgentAPI
import ArgumentParser
import Foundation

/// `deployctl nodes [list] | drain NODE | eligibility NODE on|off`.
struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The cluster's nodes: list them, drain one, or stop placing new instances on one.",
        subcommands: [List.self, Drain.self, Eligibility.self], defaultSubcommand: List.self)
}

extension Nodes {
    /// `deployctl nodes [list]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the cluster's nodes and what is reserved on them.")

        @OptionGroup var connection: ConnectionOptions
        @Option(name: .shortAndLong, help: "Output format: text or json.") var output: OutputFormat =
            .text

        func run() async throws {
            let out = Terminal.standardOutput
            try await reportFailures {
                let nodes = try await connection.client().perform { api in
                    try await api.listNodes().ok.body.json
                }
                if output == .json { return out.write(jsonText(nodes)) }
                var table = Table(
                    "NODE", "STATUS", "ADDRESS", "CPU", "MEMORY", "INSTANCES", "KERNEL", "HEARTBEAT")
                for node in nodes {
                    let cpu =
                        "\(Double(node.reservedCPUMillicores) / 1000)/\(Double(node.capacityCPUMillicores) / 1000)"
                    let memory =
                        "\(bytesText(node.reservedMemoryBytes))/\(bytesText(node.capacityMemoryBytes))"
                    let status =
                        node.status == .ready
                        ? out.paint(node.status.rawValue, .green) : out.paint(node.status.rawValue, .red)
                    table.add(
                        node.name, status, node.address, cpu, memory, String(node.instances), node.kernel,
                        age(since: node.lastHeartbeat) + " ago")
                }
                out.write(table.render(out))
            }
        }
    }

    /// `deployctl nodes drain NODE [--deadline D] | --disable`.
    struct Drain: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Move every instance off a node under each service's update strategy; it takes no new ones meanwhile."
        )

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The node's name (`deployctl nodes`).") var node: String
        @Option(
            help:
                "How long the drain may take (e.g. 30m); what remains then is stopped and replaced at once."
        ) var deadline: String?
        @Flag(help: "End the drain (instances that moved stay where they are).") var disable = false

        func validate() throws {
            if disable && deadline != nil {
                throw ValidationError("--deadline is for starting a drain; leave it out with --disable")
            }
        }

        func run() async throws {
            try await printOutcome(connection) { api in
                try await api.drainNode(
                    path: .init(name: node), body: .json(.init(enable: !disable, deadline: deadline))
                ).ok.body.json
            }
        }
    }

    /// `deployctl nodes eligibility NODE on|off`.
    struct Eligibility: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Let the scheduler place new instances on a node (on), or not (off); what runs there stays."
        )

        enum Switch: String, ExpressibleByArgument, CaseIterable { case on, off }

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The node's name (`deployctl nodes`).") var node: String
        @Argument(help: "on or off.") var eligibility: Switch

        func run() async throws {
            try await printOutcome(connection) { api in
                try await api.setNodeEligibility(
                    path: .init(name: node), body: .json(.init(eligible: eligibility == .on))
                ).ok.body.json
            }
        }
    }
}
