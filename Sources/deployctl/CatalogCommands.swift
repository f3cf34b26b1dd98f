import AgentAPI
import ArgumentParser
import Cluster
import Foundation

/// `deployctl services [list] | describe NAME`: the service catalog, as discovery answers it.
struct Services: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The service catalog: the names instances are registered under, and where each is reached.",
        subcommands: [List.self, DescribeName.self], defaultSubcommand: List.self)
}

extension Services {
    /// `deployctl services [list]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the registered names with their tags and passing instances.")

        @OptionGroup var connection: ConnectionOptions
        @Option(name: .shortAndLong, help: "Output format: text or json.") var output: OutputFormat = .text

        func run() async throws {
            let out = Terminal.standardOutput
            try await reportFailures {
                let services = try await connection.client().perform { api in try await api.listCatalogServices().ok.body.json }
                if output == .json { return out.write(jsonText(services)) }
                var table = Table("NAME", "PASSING", "TAGS")
                for service in services {
                    let passing = "\(service.passing)/\(service.instances)"
                    table.add(
                        service.name, service.passing == service.instances ? passing : out.paint(passing, .red),
                        service.tags.joined(separator: ","))
                }
                out.write(table.render(out))
            }
        }
    }

    /// `deployctl services describe NAME [--tag T] [--all]`.
    struct DescribeName: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "describe", abstract: "Show the instances registered under a name: where each is reached and its health.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The registered name (`deployctl services`).") var name: String
        @Option(help: "Only instances with this tag.") var tag: String?
        @Flag(help: "Also instances that do not pass their health check (not answered by DNS).") var all = false
        @Option(name: .shortAndLong, help: "Output format: text or json.") var output: OutputFormat = .text

        func run() async throws {
            let out = Terminal.standardOutput
            try await reportFailures {
                let instances = try await connection.client().perform { api in
                    try await api.getCatalogService(path: .init(name: name), query: .init(tag: tag, passing: !all)).ok.body.json
                }
                if output == .json { return out.write(jsonText(instances)) }
                if instances.isEmpty {
                    return out.write("no \(all ? "" : "passing ")instances registered as \(name)\n")
                }
                var table = Table("INSTANCE", "HEALTH", "NODE", "ADDRESS", "PORTS", "TAGS", "WEIGHT", "REVISION")
                for instance in instances {
                    let address = instance.port.map { HostPort(host: instance.address, port: $0.number).description } ?? instance.address
                    let ports = instance.ports.map { "\($0.name)=\($0.number)" }.joined(separator: ",")
                    let health = instance.health == .passing ? out.paint("passing", .green) : out.paint("critical", .red)
                    table.add(
                        instance.id, health, instance.node, address, ports, instance.tags.joined(separator: ","), String(instance.weight),
                        String(instance.revision))
                }
                out.write(table.render(out))
            }
        }
    }
}
