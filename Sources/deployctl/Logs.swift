import AgentAPI
import ArgumentParser
import Foundation
import Manifest

/// `deployctl logs APP/SERVICE|INSTANCE [-f] [--tail N] [--since 10m]`.
struct Logs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print an instance's output, or every instance's of a service.")

    @OptionGroup var connection: ConnectionOptions
    @Argument(help: "An instance id, or APPLICATION/SERVICE for all its running instances.") var target: String
    @Flag(name: .shortAndLong, help: "Keep printing new lines as they are written.") var follow = false
    @Option(help: "Only the last N lines of each instance.") var tail: Int?
    @Option(help: "Only lines newer than this duration (e.g. 10m).") var since: String?
    @Flag(help: "Prefix each line with its time and stream.") var timestamps = false

    func run() async throws {
        let client = connection.client()
        var sinceMillis: Int64?
        if let since {
            do {
                let duration = try DurationText.parse(since)
                sinceMillis = currentUnixMilliseconds() - duration.components.seconds * 1000
            } catch {
                Terminal.standardError.write("deployctl: --since \(error.message)\n")
                throw ExitCode(2)
            }
        }
        try await reportFailures {
            var instances: [String] = []
            if target.contains("/") || !target.contains("-") {
                guard let reference = ServiceReference(argument: target) else { throw CommandFailure.failed("\(target) is not APPLICATION/SERVICE") }
                let list = try await client.perform { api in
                    try await api.listInstances(query: .init(application: reference.application, service: reference.service)).ok.body.json
                }
                instances = list.filter { $0.desired == .run }.map(\.id)
                if instances.isEmpty { throw CommandFailure.failed("\(reference) has no running instance") }
            } else {
                instances = [target]
            }
            let prefixed = instances.count > 1
            let printer = LogPrinter(timestamps: timestamps)
            if follow {
                let (since, tail) = (sinceMillis, tail.map(Int64.init))
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for instance in instances {
                        group.addTask {
                            try await Self.follow(
                                instance, client: client, since: since, tail: tail, printer: printer, prefix: prefixed ? instance : nil)
                        }
                    }
                    try await group.waitForAll()
                }
                return
            }
            for instance in instances {
                let lines = try await client.perform { api in
                    try await api.getInstanceLogs(path: .init(id: instance), query: .init(tail: tail.map(Int64.init), since: sinceMillis)).ok.body.json
                }
                for line in lines { printer.print(line, of: prefixed ? instance : nil) }
            }
        }
    }

    /// Follows one instance's output. The agent ends a stream after its --max-query-wait; this
    /// resumes from the last line's time (skipping the lines of that millisecond already shown)
    /// for as long as the instance is meant to run.
    static func follow(
        _ instance: String, client: AgentClient, since initialSince: Int64?, tail: Int64?, printer: LogPrinter, prefix: String?
    ) async throws(CommandFailure) {
        var since = initialSince
        var count = tail
        var lastTime: Int64?
        var shownAtLastTime: Set<String> = []
        while true {
            let body = try await client.perform(timeout: .seconds(24 * 3600)) { api in
                try await api.getInstanceLogs(path: .init(id: instance), query: .init(tail: count, since: since, follow: true)).ok.body.applicationJsonl
            }
            do {
                for try await line in body.asDecodedJSONLines(of: LogLine.self) {
                    if line.time == lastTime, shownAtLastTime.contains(line.text) { continue }
                    if line.time != lastTime { shownAtLastTime = [] }
                    lastTime = line.time
                    shownAtLastTime.insert(line.text)
                    printer.print(line, of: prefix)
                }
            } catch {
                throw CommandFailure.unreachable("the log stream of \(instance) broke off: \(error)")
            }
            let current = try await client.perform { api in try await api.getInstance(path: .init(id: instance)).ok.body.json }
            guard current.desired == .run else { return }
            since = lastTime ?? since
            // Everything since the last line, not just the last few: lines may have come while
            // the stream was being resumed.
            count = since == nil ? 0 : 100_000
        }
    }

}

/// Writes log lines to stdout or stderr as their stream was, optionally with time and stream.
struct LogPrinter: Sendable {
    let timestamps: Bool

    func print(_ line: LogLine, of instance: String?) {
        var text = ""
        if let instance { text += "[\(instance)] " }
        if timestamps { text += "\(line.time) \(line.stream.rawValue) " }
        Terminal(fileDescriptor: line.stream == .stderr ? 2 : 1).write(text + line.text + "\n")
    }
}
