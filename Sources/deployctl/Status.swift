import AgentAPI
import ArgumentParser
import Foundation

/// `deployctl status [APPLICATION]`: applications and their services, or one application.
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show applications, their services and instances.", aliases: ["get"])

    @OptionGroup var connection: ConnectionOptions

    @Argument(help: "An application to show in detail.")
    var application: String?

    @Option(name: .shortAndLong, help: "Output format: text or json.")
    var output: OutputFormat = .text

    func run() async throws {
        let client = connection.client()
        let out = Terminal.standardOutput
        try await reportFailures {
            if let application {
                let (info, instances) = try await client.perform { api in
                    let info = try await api.getApplication(path: .init(name: application), query: .init(detail: true)).ok.body.json
                    return (info, try await api.listInstances(query: .init(application: application)).ok.body.json)
                }
                if output == .json { return out.write(jsonText(ApplicationDetail(application: info, instances: instances))) }
                out.write(Self.render(info, instances: instances, terminal: out))
                return
            }
            let status = try await client.perform { api in try await api.getStatus().ok.body.json }
            if output == .json { return out.write(jsonText(status)) }
            if status.applications.isEmpty {
                out.write("No applications. Apply one with `deployctl apply -f manifest.json`.\n")
                return
            }
            var table = Table("APPLICATION", "SERVICE", "REVISION", "READY", "STATUS")
            for application in status.applications {
                for service in application.services {
                    table.add(application.name, service.name, String(service.revision), readyText(service), countsText(service, out))
                }
            }
            out.write(table.render(out))
        }
    }

    static func render(_ info: ApplicationInfo, instances: [InstanceInfo], terminal out: Terminal) -> String {
        var text = "\(out.paint(info.name, .bold))  revision \(info.revision)\(info.description.isEmpty ? "" : " — \(info.description)")\n\n"
        var services = Table("SERVICE", "READY", "STATUS")
        for service in info.services { services.add(service.name, readyText(service), countsText(service, out)) }
        text += services.render(out)
        let unplaced = info.services.flatMap { service in service.unplaced.map { "\(service.name): \($0)" } }
        for line in unplaced { text += out.paint("unplaced: ", .yellow) + line + "\n" }
        text += "\n"
        var table = Table("INSTANCE", "SERVICE", "REV", "NODE", "STATUS", "PID", "RESTARTS", "LAST EXIT", "PORTS", "AGE")
        for instance in instances where instance.desired == .run || ![.stopped, .completed, .failed].contains(instance.status) {
            let ports = instance.ports.map { "\($0.name)=\($0.number)" }.joined(separator: ",")
            let started = instance.events.first.map { age(since: $0.time) } ?? ""
            table.add(
                instance.id, instance.service, String(instance.revision), instance.node, statusText(instance.status.rawValue, out),
                instance.mainPID.map(String.init) ?? "-", String(instance.restartCount), instance.lastExit.map(exitText) ?? "-", ports, started)
        }
        text += table.render(out)
        return text
    }
}

/// What `status APPLICATION -o json` prints.
struct ApplicationDetail: Codable {
    var application: ApplicationInfo
    var instances: [InstanceInfo]
}

func readyText(_ service: ServiceStatus) -> String {
    "\(service.ready)/\(service.replicas)"
}

func countsText(_ service: ServiceStatus, _ out: Terminal) -> String {
    let order = ["healthy", "running", "starting", "pending", "unhealthy", "lost", "completed", "failed", "stopped"]
    let parts = order.compactMap { status in service.counts.additionalProperties[status].map { "\($0) \(statusText(status, out))" } }
    return parts.isEmpty ? "-" : parts.joined(separator: ", ")
}

func statusText(_ status: String, _ out: Terminal) -> String {
    switch status {
    case "healthy", "completed": out.paint(status, .green)
    case "unhealthy", "failed", "lost": out.paint(status, .red)
    case "pending", "starting": out.paint(status, .yellow)
    default: status
    }
}

/// How a process ended, in a few words: "exit 1", "SIGKILL", "OOM killed".
func exitText(_ exit: Components.Schemas.ExitInfo) -> String {
    if exit.oomKilled { return "OOM killed" }
    if let signal = exit.signal { return signalName(signal) }
    return exit.code.map { "exit \($0)" } ?? "-"
}

/// SIGTERM for 15, and so on; the number for the rare others.
func signalName(_ signal: Int32) -> String {
    let names: [Int32: String] = [1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 6: "SIGABRT", 7: "SIGBUS", 8: "SIGFPE",
                                  9: "SIGKILL", 11: "SIGSEGV", 13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM"]
    return names[signal] ?? "signal \(signal)"
}

/// Pretty JSON of any answer, for `-o json`.
func jsonText(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    // Values decoded from the agent always encode again.
    return ((try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null") + "\n"
}

/// Runs a command body, printing a refusal or an unreachable agent the way every command does,
/// and exiting with its status.
func reportFailures(_ body: () async throws -> Void) async throws {
    do {
        try await body()
    } catch let error as CommandFailure {
        let err = Terminal.standardError
        switch error {
        case .refused(let apiError):
            err.write("\(err.paint("error", .red)): \(apiError.message) [\(apiError.code)]\n")
            for issue in apiError.issues { err.write("  \(err.paint(issue.path, .bold)): \(issue.message)\n") }
        case .unreachable(let message), .failed(let message):
            err.write("\(err.paint("error", .red)): \(message)\n")
        }
        throw ExitCode(error.exitCode)
    }
}
