import ArgumentParser
import Manifest

/// `deployctl validate FILE...`: checks manifests without contacting an agent.
struct Validate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check manifests and report every problem with its JSON path.",
        discussion: "Exit status: 0 when every file is valid, 1 when any is invalid, 2 when a file cannot be read.")

    @Argument(help: "Manifest files to check (\"-\" reads standard input).")
    var files: [String]

    @Option(name: .shortAndLong, help: "Output format: text or json.")
    var output: OutputFormat = .text

    func validate() throws {
        if files.isEmpty { throw ValidationError("give at least one manifest file") }
    }

    func run() async throws {
        var reports: [FileReport] = []
        var unreadable = false
        for file in files {
            do {
                let bytes = try readFileBytes(file)
                do {
                    let application = try ManifestDecoder.decode(bytes)
                    reports.append(FileReport(file: file, application: application))
                } catch {
                    reports.append(FileReport(file: file, issues: error.issues))
                }
            } catch {
                unreadable = true
                reports.append(FileReport(file: file, readError: error.reason))
            }
        }
        switch output {
        case .text: printText(reports)
        case .json: Terminal.standardOutput.write(JSONWriter.pretty(FileReport.json(reports)))
        }
        if unreadable { throw ExitCode(2) }
        if reports.contains(where: { !$0.isValid }) { throw ExitCode(1) }
    }

    private func printText(_ reports: [FileReport]) {
        let out = Terminal.standardOutput
        for report in reports {
            if let reason = report.readError {
                Terminal.standardError.write("deployctl: cannot read \(report.file): \(reason)\n")
            } else if let application = report.application {
                let instances = application.services.reduce(0) { $0 + $1.replicas }
                let services = application.services.count
                out.write("\(out.paint("valid", .green))  \(report.file): application \"\(application.name)\", \(services) service\(services == 1 ? "" : "s"), \(instances) instance\(instances == 1 ? "" : "s")\n")
            } else {
                out.write("\(out.paint("invalid", .red))  \(report.file): \(report.issues.count) problem\(report.issues.count == 1 ? "" : "s")\n")
                for issue in report.issues {
                    out.write("  \(out.paint(issue.path.description, .bold)): \(issue.message)\n")
                }
            }
        }
    }
}

/// Machine- or human-readable output.
enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json
}

/// What validation found in one file.
struct FileReport {
    var file: String
    var application: Application?
    var issues: [ManifestIssue] = []
    var readError: String?

    var isValid: Bool { application != nil }

    static func json(_ reports: [FileReport]) -> JSONValue {
        var files: [JSONValue] = []
        for report in reports {
            var object: JSONObject = ["file": .string(report.file), "valid": .bool(report.isValid)]
            if let application = report.application { object.append("application", .string(application.name)) }
            if let reason = report.readError { object.append("error", .string(reason)) }
            object.append("issues", .array(report.issues.map { ["path": .string($0.path.description), "message": .string($0.message)] }))
            files.append(.object(object))
        }
        return ["valid": .bool(reports.allSatisfy(\.isValid)), "files": .array(files)]
    }
}
