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
        let sinceText = sinceMillis.map(String.init)
        try await reportFailures {
            var instances: [String] = []
            if target.contains("/") || !target.contains("-") {
                guard let reference = ServiceReference(argument: target) else { throw CommandFailure.failed("\(target) is not APPLICATION/SERVICE") }
                let list = try await client.call(.GET, "/v1/instances" + query([("application", reference.application), ("service", reference.service)]), as: [InstanceInfo].self)
                instances = list.filter { $0.desired == "run" }.map(\.id)
                if instances.isEmpty { throw CommandFailure.failed("\(reference) has no running instance") }
            } else {
                instances = [target]
            }
            let prefixed = instances.count > 1
            if follow {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for instance in instances {
                        group.addTask {
                            let stream = try await client.lines("/v1/instances/\(segment(instance))/logs" + query([("follow", "true"), ("tail", tail.map(String.init)), ("since", sinceText)]))
                            for try await record in stream {
                                guard let line = try? JSONDecoder().decode(LogLine.self, from: Data(record.utf8)) else { continue }
                                print(line, of: prefixed ? instance : nil)
                            }
                        }
                    }
                    try await group.waitForAll()
                }
                return
            }
            for instance in instances {
                let lines = try await client.call(.GET, "/v1/instances/\(segment(instance))/logs" + query([("tail", tail.map(String.init)), ("since", sinceText)]), as: [LogLine].self)
                for line in lines { print(line, of: prefixed ? instance : nil) }
            }
        }
    }

    func print(_ line: LogLine, of instance: String?) {
        var text = ""
        if let instance { text += "[\(instance)] " }
        if timestamps { text += "\(line.time) \(line.stream) " }
        Terminal(fileDescriptor: line.stream == "stderr" ? 2 : 1).write(text + line.text + "\n")
    }
}
