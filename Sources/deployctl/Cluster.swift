import AgentAPI
import ArgumentParser
import Foundation

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
                let events = try await client.perform { api in
                    try await api.listEvents(query: .init(after: after.map { Int64(clamping: $0) })).ok.body.json
                }
                if output == .json { return Terminal.standardOutput.write(jsonText(events)) }
                for event in events { show(event) }
                return
            }
            // The agent ends a stream after its --max-query-wait; resume after the last event.
            var last = after.map { Int64(clamping: $0) }
            var pacer = FollowPacer()
            var everOpened = false
            while true {
                let opened = ContinuousClock.now
                let shownBefore = last
                let pause: Duration
                do throws(CommandFailure) {
                    try await stream(client, after: &last, opened: &everOpened)
                    pause = pacer.afterAnswer(changed: last != shownBefore, took: ContinuousClock.now - opened)
                } catch {
                    // Never reached at all, the address or the trust is wrong more likely than
                    // the agent restarting: said at once (exit 3), as before.
                    guard error.isTransient, everOpened else { throw error }
                    // As `kv watch` does: a restarting agent or an election is waited out, and
                    // the stream resumes after the last event shown.
                    pause = pacer.afterFailure()
                    Terminal.standardError.write("deployctl: \(error); asking again in \(pause)\n")
                }
                if pause > .zero { try? await Task.sleep(for: pause) }
            }
        }
    }

    /// Shows the events after `last` as they come, until the agent ends the stream; `last` is
    /// the index of the last one shown.
    private func stream(_ client: AgentClient, after last: inout Int64?, opened: inout Bool) async throws(CommandFailure) {
        let body = try await client.perform(timeout: .seconds(24 * 3600)) { [last] api in
            try await api.listEvents(query: .init(after: last, stream: true)).ok.body.textEventStream
        }
        opened = true
        do {
            for try await message in body.asDecodedServerSentEventsWithJSONData(of: ClusterEvent.self) {
                guard let event = message.data else { continue }
                last = event.index
                if output == .json {
                    Terminal.standardOutput.write(String(decoding: (try? JSONEncoder().encode(event)) ?? Data(), as: UTF8.self) + "\n")
                } else {
                    show(event)
                }
            }
        } catch let error as DecodingError {
            // Not transient: asked again, the same event would come back.
            throw CommandFailure.failed("an event this deployctl cannot read (\(error)); are deployctl's and the agent's versions the same?")
        } catch {
            throw CommandFailure.unreachable("the event stream broke off: \(error)")
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
            let version = try await connection.client().perform(timeout: .seconds(5)) { api in try await api.getVersion().ok.body.json }
            Terminal.standardOutput.write("agentd \(version.version) (api \(version.api), node \(version.node))\n")
        } catch {
            Terminal.standardOutput.write("agentd: not reachable (\(error))\n")
        }
    }
}
