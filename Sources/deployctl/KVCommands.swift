import AgentAPI
import ArgumentParser
import Foundation
import Manifest
import OpenAPIRuntime

/// `deployctl kv get|put|delete|ls|watch`: the cluster's key-value store.
struct KV: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv",
        abstract: "Read and write the cluster's key-value store (linearizable; --stale reads this agent's copy).",
        subcommands: [Get.self, Put.self, Delete.self, List.self, Watch.self])
}

/// `--stale` and `-o`, shared by the reading commands.
struct KVReadOptions: ParsableArguments {
    @Flag(help: "Read this agent's copy without asking the leader: faster, possibly behind (by its last contact with the leader).")
    var stale = false
    @Option(name: .shortAndLong, help: "Output format: text (the value's bytes as they are) or json (entries with base64 values).")
    var output: OutputFormat = .text
}

extension KV {
    /// `deployctl kv get KEY [--recurse]`.
    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print a key's value (exit 1 if it does not exist), or with --recurse every key under it.")

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var options: KVReadOptions
        @Argument(help: "The key: a /-separated path such as app/config/port.") var key: String
        @Flag(help: "Every key starting with KEY, as KEY:VALUE lines.") var recurse = false

        func run() async throws {
            try await reportFailures {
                let client = connection.client()
                if recurse {
                    let entries = try await KVReading.list(client, under: key, stale: options.stale)
                    Terminal.standardOutput.write(options.output == .json ? jsonText(entries) : KVReading.lines(entries))
                    return
                }
                let found = try await KVReading.entry(client, key: key, stale: options.stale, after: nil, wait: nil)
                guard let entry = found.entry else {
                    throw CommandFailure.refused(APIError(code: APIErrorCode.keyNotFound, message: "no key \"\(key)\"; list keys with `deployctl kv ls`"))
                }
                if options.output == .json { return Terminal.standardOutput.write(jsonText(entry)) }
                FileHandle.standardOutput.write(Data(KVReading.value(entry)))
            }
        }
    }

    /// `deployctl kv put KEY [VALUE | --file PATH] [--cas N]`.
    struct Put: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set a key to a value given, or read from a file or standard input (--file -).")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The key.") var key: String
        @Argument(help: "The value, as written (no newline is added).") var value: String?
        @Option(help: "Read the value from this file, or from standard input for -.") var file: String?
        @Option(help: "Check-and-set: write only if the key's modify index is N (0: only if it does not exist).") var cas: Int64?

        func validate() throws {
            if (value == nil) == (file == nil) { throw ValidationError("give the value either as an argument or with --file (- for standard input)") }
            if let cas, cas < 0 { throw ValidationError("--cas \(cas) is negative; 0 means the key must not exist yet") }
        }

        func run() async throws {
            let bytes: [UInt8]
            if let file {
                do {
                    bytes = try readFileBytes(file)
                } catch {
                    Terminal.standardError.write("deployctl: --file \(error)\n")
                    throw ExitCode(2)
                }
            } else {
                bytes = Array((value ?? "").utf8)
            }
            try await reportFailures {
                let written = try await connection.client().perform { api in
                    try await api.putKV(path: .init(key: key), query: .init(cas: cas), body: .any(HTTPBody(bytes))).ok.body.json
                }
                Terminal.standardOutput.write("\(written.key): \(written.size) bytes written at index \(written.modifyIndex)\n")
            }
        }
    }

    /// `deployctl kv delete KEY [--recurse] [--cas N]`.
    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a key, or with --recurse every key under it.")

        @OptionGroup var connection: ConnectionOptions
        @Argument(help: "The key.") var key: String
        @Flag(help: "Delete every key that starts with KEY.") var recurse = false
        @Option(help: "Delete only if the key's modify index is N.") var cas: Int64?

        func validate() throws {
            if recurse && cas != nil { throw ValidationError("--cas compares one key's modify index; leave it out with --recurse") }
        }

        func run() async throws {
            try await reportFailures {
                let result = try await connection.client().perform { api in
                    try await api.deleteKV(path: .init(key: key), query: .init(recurse: recurse, cas: cas)).ok.body.json
                }
                Terminal.standardOutput.write("deleted \(result.deleted) key\(result.deleted == 1 ? "" : "s") at index \(result.index)\n")
            }
        }
    }

    /// `deployctl kv ls [PREFIX]`.
    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "ls", abstract: "List keys (every one, or those starting with PREFIX) with their sizes and indexes.")

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var options: KVReadOptions
        @Argument(help: "Only keys starting with these bytes.") var prefix: String?

        func run() async throws {
            let out = Terminal.standardOutput
            try await reportFailures {
                let entries = try await connection.client().perform { api in
                    try await api.listKV(query: .init(prefix: prefix, keys: true, stale: options.stale)).ok.body.json
                }
                if options.output == .json { return out.write(jsonText(entries)) }
                var table = Table("KEY", "SIZE", "CREATED", "MODIFIED")
                for entry in entries { table.add(entry.key, String(entry.size), String(entry.createIndex), String(entry.modifyIndex)) }
                out.write(table.render(out))
            }
        }
    }

    /// `deployctl kv watch KEY [--recurse]`.
    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a key's value now and at every change (blocking queries), until interrupted.",
            discussion: "Text output prints each value on a line of its own (`(absent)` while the key does not exist); json prints one line per change: the entry, or null.")

        @OptionGroup var connection: ConnectionOptions
        @OptionGroup var options: KVReadOptions
        @Argument(help: "The key.") var key: String
        @Flag(help: "Watch every key under KEY: print KEY:VALUE lines, then a blank line, at each change.") var recurse = false
        @Option(help: "How long each blocking query waits before asking again (e.g. 5m).") var wait = "5m"

        func run() async throws {
            let client = connection.client()
            try await reportFailures { try await watch(client) }
        }

        /// Prints the value now and at every change, until interrupted or refused.
        private func watch(_ client: AgentClient) async throws(CommandFailure) {
            let out = Terminal.standardOutput
            var index: Int64?
            var shown: String?
            var pacer = FollowPacer()
            let waitDuration = try? DurationText.parse(wait)
            while true {
                let asked = ContinuousClock.now
                let answer: (text: String, index: Int64)
                do throws(CommandFailure) {
                    answer = try await next(client, after: index)
                } catch {
                    guard error.isTransient else { throw error }
                    // As `consul watch` does: an election or a restarting agent is waited out.
                    let pause = pacer.afterFailure()
                    Terminal.standardError.write("deployctl: \(error); asking again in \(pause)\n")
                    try? await Task.sleep(for: pause)
                    continue
                }
                let pause = pacer.afterAnswer(changed: index != answer.index, took: ContinuousClock.now - asked, ofAWait: waitDuration)
                index = answer.index
                // A blocking query may answer when something else under the index moved, or
                // when its wait ran out: only a different answer is a change.
                if answer.text != shown { out.write(answer.text) }
                shown = answer.text
                if pause > .zero { try? await Task.sleep(for: pause) }
            }
        }

        /// What to print for the key or prefix once it changes past `index`, and its new index.
        private func next(_ client: AgentClient, after index: Int64?) async throws(CommandFailure) -> (text: String, index: Int64) {
            if recurse {
                let listed = try await KVReading.list(client, under: key, stale: options.stale, after: index, wait: wait)
                return (options.output == .json ? compactJSON(listed.entries) : KVReading.lines(listed.entries) + "\n", listed.index)
            }
            let found = try await KVReading.entry(client, key: key, stale: options.stale, after: index, wait: wait)
            let text = options.output == .json
                ? (found.entry.map(compactJSON) ?? "null\n")
                : (found.entry.map { String(decoding: KVReading.value($0), as: UTF8.self) + "\n" } ?? "(absent)\n")
            return (text, found.index)
        }
    }
}

/// The reads the kv commands share.
enum KVReading {
    /// One key (nil when it does not exist) and the index to wait past for its next change.
    static func entry(
        _ client: AgentClient, key: String, stale: Bool, after index: Int64?, wait: String?
    ) async throws(CommandFailure) -> (entry: Components.Schemas.KVEntry?, index: Int64) {
        try await client.perform(timeout: blockingTimeout(wait)) { api in
            switch try await api.getKV(path: .init(key: key), query: .init(index: index, wait: wait, stale: stale)) {
            case .ok(let ok):
                guard case .KVEntry(let entry) = try ok.body.json else { throw CommandFailure.failed("the agent answered a list for one key") }
                return (entry, ok.headers.xFlotillaIndex)
            case .notFound(let missing):
                return (nil, missing.headers.xFlotillaIndex)
            case let other:
                throw CommandFailure.failed("the agent answered \(other)")
            }
        }
    }

    /// Every key under `key` and the index to wait past for the next change there.
    static func list(
        _ client: AgentClient, under key: String, stale: Bool, after index: Int64? = nil, wait: String? = nil
    ) async throws(CommandFailure) -> (entries: [Components.Schemas.KVEntry], index: Int64) {
        try await client.perform(timeout: blockingTimeout(wait)) { api in
            let ok = try await api.getKV(path: .init(key: key), query: .init(recurse: true, index: index, wait: wait, stale: stale)).ok
            guard case .KVEntryList(let entries) = try ok.body.json else { throw CommandFailure.failed("the agent answered one entry for a list") }
            return (entries, ok.headers.xFlotillaIndex)
        }
    }

    static func list(_ client: AgentClient, under key: String, stale: Bool) async throws(CommandFailure) -> [Components.Schemas.KVEntry] {
        try await list(client, under: key, stale: stale, after: nil, wait: nil).entries
    }

    /// A blocking query's answer may take its whole wait: the request waits longer.
    static func blockingTimeout(_ wait: String?) -> Duration {
        guard let wait, let parsed = try? DurationText.parse(wait) else { return .seconds(60) }
        return parsed + .seconds(30)
    }

    static func value(_ entry: Components.Schemas.KVEntry) -> [UInt8] {
        entry.value.flatMap { Data(base64Encoded: $0) }.map(Array.init) ?? []
    }

    /// `KEY:VALUE` lines, as `consul kv get -recurse` prints them.
    static func lines(_ entries: [Components.Schemas.KVEntry]) -> String {
        entries.map { "\($0.key):\(String(decoding: value($0), as: UTF8.self))\n" }.joined()
    }
}

/// One JSON value on one line (a watch prints one per change).
func compactJSON(_ value: some Encodable) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    return ((try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null") + "\n"
}
