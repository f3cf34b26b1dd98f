import AgentAPI
import ArgumentParser
import Foundation

/// `deployctl cluster members | token | transfer-leadership | remove-peer | ca create`.
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "The cluster's servers and its join token.",
        subcommands: [Members.self, Token.self, TransferLeadership.self, RemovePeer.self, CertificateAuthority.self])

    /// `deployctl cluster members`.
    struct Members: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the servers: Raft voters and learners, and which one leads.")

        @OptionGroup var connection: ConnectionOptions
        @Option(name: .shortAndLong, help: "Output format: text or json.") var output: OutputFormat = .text

        func run() async throws {
            let out = Terminal.standardOutput
            try await reportFailures {
                let members = try await connection.client().perform { api in try await api.listMembers().ok.body.json }
                if output == .json { return out.write(jsonText(members)) }
                var table = Table("ID", "NAME", "ADDRESS", "ROLE", "LEADER")
                for member in members {
                    table.add(String(member.id), member.name, member.address, member.role.rawValue, member.leader ? out.paint("yes", .green) : "")
                }
                out.write(table.render(out))
            }
        }
    }

    /// `deployctl cluster token [--rotate]`.
    struct Token: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show the join token (on any server); --rotate replaces it on every server.",
            discussion: "A server joins with: agentd --join HOST:PORT --token TOKEN. The token also pins the cluster's CA.")

        @OptionGroup var connection: ConnectionOptions
        @Flag(help: "Make a new token; the old one stops working at once.") var rotate = false

        func run() async throws {
            let out = Terminal.standardOutput
            try await reportFailures {
                let info = try await connection.client().perform { api in
                    rotate ? try await api.rotateJoinToken().ok.body.json : try await api.getJoinToken().ok.body.json
                }
                out.write(info.token + "\n")
            }
        }
    }

    /// `deployctl cluster transfer-leadership ID`.
    struct TransferLeadership: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "transfer-leadership", abstract: "Hand leadership to another voter (before taking the leader down for maintenance).")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The Raft id of the voter to lead (`deployctl cluster members`).") var id: Int64

        func run() async throws {
            try await printOutcome(connection) { api in
                try await api.transferLeadership(body: .json(.init(to: id))).ok.body.json
            }
        }
    }

    /// `deployctl cluster remove-peer ID`.
    struct RemovePeer: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "remove-peer", abstract: "Take a server out of the cluster for good (one that is gone, or before retiring it).")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The Raft id of the server (`deployctl cluster members`).") var id: Int64

        func run() async throws {
            try await printOutcome(connection) { api in
                try await api.removeMember(path: .init(id: id)).ok.body.json
            }
        }
    }
}

/// Runs one command against the agent and prints what the agent says it did.
func printOutcome(_ connection: ConnectionOptions, _ body: (Client) async throws -> CommandOutcome) async throws {
    try await reportFailures {
        let outcome = try await connection.client().perform(body)
        Terminal.standardOutput.write(outcome.message + "\n")
    }
}
