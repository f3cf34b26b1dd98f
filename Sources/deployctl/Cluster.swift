import AgentAPI
import ArgumentParser
import Foundation

/// `deployctl nodes`.
struct Nodes: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the cluster's nodes and what is reserved on them.")

    @OptionGroup var connection: ConnectionOptions
    @Option(name: .shortAndLong, help: "Output format: text or json.") var output: OutputFormat = .text

    func run() async throws {
        let out = Terminal.standardOutput
        try await reportFailures {
            let nodes = try await connection.client().call(.GET, "/v1/nodes", as: [NodeInfo].self)
            if output == .json { return out.write(jsonText(nodes)) }
            var table = Table("NODE", "STATUS", "ADDRESS", "CPU", "MEMORY", "INSTANCES", "KERNEL", "HEARTBEAT")
            for node in nodes {
                let cpu = "\(Double(node.reservedCPUMillicores) / 1000)/\(Double(node.capacityCPUMillicores) / 1000)"
                let memory = "\(bytesText(node.reservedMemoryBytes))/\(bytesText(node.capacityMemoryBytes))"
                let status = node.status == "ready" ? out.paint(node.status, .green) : out.paint(node.status, .red)
                table.add(node.name, status, node.address, cpu, memory, String(node.instances), node.kernel, age(since: node.lastHeartbeat) + " ago")
            }
            out.write(table.render(out))
        }
    }
}

/// `deployctl events [-f]`.
struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show recent cluster events; with -f, keep streaming new ones.")

    @OptionGroup var connection: ConnectionOptions
    @Flag(name: .shortAndLong, help: "Keep streaming new events.") var follow = false
    @Option(help: "Only events after this log index.") var after: UInt64?
    @Option(name: .shortAndLong, help: "Output format: text or json.") var output: OutputFormat = .text

    func run() async throws {
        let client = connection.client()
        try await reportFailures {
            if !follow {
                let events = try await client.call(.GET, "/v1/events" + query([("after", after.map(String.init))]), as: [ClusterEvent].self)
                if output == .json { return Terminal.standardOutput.write(jsonText(events)) }
                for event in events { show(event) }
                return
            }
            let stream = try await client.lines("/v1/events" + query([("stream", "true"), ("after", after.map(String.init))]))
            do {
                for try await line in stream where line.hasPrefix("data: ") {
                    guard let event = try? JSONDecoder().decode(ClusterEvent.self, from: Data(line.dropFirst(6).utf8)) else { continue }
                    if output == .json {
                        Terminal.standardOutput.write(String(decoding: (try? JSONEncoder().encode(event)) ?? Data(), as: UTF8.self) + "\n")
                    } else {
                        show(event)
                    }
                }
            } catch {
                throw CommandFailure.unreachable("the event stream ended: \(error)")
            }
        }
    }

    func show(_ event: ClusterEvent) {
        let out = Terminal.standardOutput
        let subject = [event.application, event.service, event.instance, event.node].compactMap { $0 }.joined(separator: " ")
        out.write("\(out.paint(String(event.index), .dim))  \(event.kind)  \(out.paint(subject, .bold))  \(event.message)\n")
    }
}

/// `deployctl version`.
struct Version: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show deployctl's version and, when it answers, the agent's.")

    @OptionGroup var connection: ConnectionOptions

    func run() async throws {
        Terminal.standardOutput.write("deployctl \(FlotillaVersion.current)\n")
        do {
            let version = try await connection.client().call(.GET, "/v1/version", as: VersionInfo.self, timeout: .seconds(5))
            Terminal.standardOutput.write("agentd \(version.version) (api \(version.api), node \(version.node))\n")
        } catch {
            Terminal.standardOutput.write("agentd: not reachable (\(error))\n")
        }
    }
}
