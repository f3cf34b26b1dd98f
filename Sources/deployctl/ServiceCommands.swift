import AgentAPI
import ArgumentParser
import Foundation

/// `APPLICATION/SERVICE`, or `SERVICE` when the application has the same name.
struct ServiceReference: ExpressibleByArgument, CustomStringConvertible {
    var application: String
    var service: String

    init?(argument: String) {
        let parts = argument.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        switch parts.count {
        case 1 where !parts[0].isEmpty: (application, service) = (parts[0], parts[0])
        case 2 where !parts[0].isEmpty && !parts[1].isEmpty: (application, service) = (parts[0], parts[1])
        default: return nil
        }
    }

    var description: String { "\(application)/\(service)" }
    static var defaultCompletionKind: CompletionKind { .default }
}

/// `deployctl describe service APP/SERVICE`.
struct Describe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show a service in detail: status, manifest, instances and their events.")

    enum Kind: String, ExpressibleByArgument, CaseIterable { case service }

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "What to describe: service.") var kind: Kind
    @Argument(help: "APPLICATION/SERVICE (or SERVICE when the application has the same name).") var reference: ServiceReference
    @Option(name: .shortAndLong, help: "Output format: text or json.") var output: OutputFormat = .text

    func run() async throws {
        let out = Terminal.standardOutput
        try await reportFailures {
            let description = try await connection.client().perform { api in
                try await api.getService(path: .init(name: reference.application, service: reference.service)).ok.body.json
            }
            if output == .json { return out.write(jsonText(description)) }
            let status = description.status
            var text = "\(out.paint(reference.description, .bold))  revision \(status.revision)\(status.isBatch ? "  (batch)" : "")\n"
            text += "ready \(readyText(status)); \(countsText(status, out))\n"
            for reason in status.unplaced { text += out.paint("unplaced: ", .yellow) + reason + "\n" }
            // The revision records the digest its tag named when it was made: both, apart.
            if let object = try? JSONSerialization.jsonObject(with: Data(description.manifest.utf8)) as? [String: Any],
                let image = object["image"] as? String
            {
                let parts = image.split(separator: "@", maxSplits: 1).map(String.init)
                text += "image \(parts[0])" + (parts.count == 2 ? "  digest \(parts[1])" : "") + "\n"
            }
            text += "\nmanifest:\n"
            if let json = try? JSONSerialization.jsonObject(with: Data(description.manifest.utf8)),
                let pretty = try? JSONSerialization.data(withJSONObject: json, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
            {
                text += String(decoding: pretty, as: UTF8.self).split(separator: "\n").map { "  " + $0 }.joined(separator: "\n") + "\n"
            }
            for instance in description.instances {
                let ports = instance.ports.map { "\($0.name)=\($0.number)" }.joined(separator: ",")
                text += "\n\(out.paint(instance.id, .bold))  node \(instance.node)  revision \(instance.revision)  \(statusText(instance.status.rawValue, out))  desired \(instance.desired.rawValue)\(ports.isEmpty ? "" : "  ports \(ports)")\n"
                text += "  pid \(instance.mainPID.map(String.init) ?? "-")  restarts \(instance.restartCount)"
                text += "  last exit \(instance.lastExit.map(exitText) ?? "-")\(instance.exit.map { "  ended: \(exitText($0))" } ?? "")\n"
                for event in instance.events {
                    text += "  \(age(since: event.time)) ago  \(event.status.rawValue)  \(event.message)\n"
                }
            }
            out.write(text)
        }
    }
}

/// `deployctl scale APP/SERVICE N`.
struct Scale: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Set how many instances a service runs (until the next apply).")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION/SERVICE.") var reference: ServiceReference
    @Argument(help: "The number of instances.") var replicas: Int
    @Option(help: "Check-and-set: only if the application is at this revision.") var revision: UInt64?

    func run() async throws {
        let request = Components.Schemas.ScaleRequest(replicas: replicas, revision: revision.map { Int64(clamping: $0) })
        try await reportFailures {
            let outcome = try await connection.client().perform { api in
                try await api.scaleService(path: .init(name: reference.application, service: reference.service), body: .json(request)).ok.body.json
            }
            Terminal.standardOutput.write(outcome.message + "\n")
        }
    }
}

/// `deployctl restart APP/SERVICE`.
struct Restart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Replace every instance of a service, following its update strategy.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION/SERVICE.") var reference: ServiceReference

    func run() async throws {
        try await reportFailures {
            let outcome = try await connection.client().perform { api in
                try await api.restartService(path: .init(name: reference.application, service: reference.service)).ok.body.json
            }
            Terminal.standardOutput.write(outcome.message + "\n")
        }
    }
}

/// `deployctl stop APP/SERVICE`.
struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Stop every instance of a service and keep the service (a scale to zero).")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "APPLICATION/SERVICE.") var reference: ServiceReference

    func run() async throws {
        try await reportFailures {
            let outcome = try await connection.client().perform { api in
                try await api.stopService(path: .init(name: reference.application, service: reference.service)).ok.body.json
            }
            Terminal.standardOutput.write(outcome.message + "\n")
        }
    }
}

/// `deployctl delete APPLICATION`.
struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Delete an application: stop its instances and forget it.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "The application.") var application: String
    @Option(help: "Check-and-set: only if the application is at this revision.") var revision: UInt64?

    func run() async throws {
        try await reportFailures {
            let outcome = try await connection.client().perform { api in
                try await api.deleteApplication(path: .init(name: application), query: .init(revision: revision.map { Int64(clamping: $0) })).ok.body.json
            }
            Terminal.standardOutput.write(outcome.message + "\n")
        }
    }
}
