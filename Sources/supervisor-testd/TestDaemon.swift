import Dispatch
import Foundation
import Manifest
import Supervisor

/// A supervisor in a process of its own, for the tests that must kill one with SIGKILL and start
/// another (adoption), and the sd_notify client the tests' services run. Not a product.
///
///     supervisor-testd run --state DIR --parent CGROUP --rootfs DIR --count N --prefix P --status FILE
///         Supervises N counting services (each prints 1, 2, 3… every 20 ms), adopting those a
///         previous run left, writes FILE (`id pid launches restarts adopted phase last-exit`, tab-separated, per line)
///         and waits: SIGTERM stops every service and exits, SIGUSR1 leaves them running.
///     supervisor-testd journal --state DIR --parent CGROUP --id ID --lines N
///         Runs one host-root service that prints N lines on stdout and on stderr, with journal
///         forwarding on, and exits when it has ended and its output is captured.
///     supervisor-testd notify KEY=VALUE…
///         Sends one sd_notify message to $NOTIFY_SOCKET through libsystemd (exit 1 if unsent).
///     supervisor-testd agent [STATUS]
///         Behaves as agentd does under systemd: READY=1 with STATUS, WATCHDOG=1 at half of
///         WATCHDOG_USEC, STOPPING=1 on SIGTERM.
@main
struct TestDaemon {
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty else { fail("usage: supervisor-testd run|journal|notify|agent …") }
        let command = arguments.removeFirst()
        do {
            switch command {
            case "run": try await run(Options(arguments))
            case "journal": try await journal(Options(arguments))
            case "notify": exit(SystemdNotifier().notify(arguments) ? 0 : 1)
            case "agent": await agent(status: arguments.first ?? "supervising")
            default: fail("unknown command \(command)")
            }
        } catch {
            fail("\(error)")
        }
    }

    static func fail(_ message: String) -> Never {
        FileHandle.standardError.write(Data(("supervisor-testd: " + message + "\n").utf8))
        exit(2)
    }

    /// `--name value` pairs.
    struct Options {
        var values: [String: String] = [:]

        init(_ arguments: [String]) {
            var index = 0
            while index + 1 < arguments.count {
                values[String(arguments[index].drop { $0 == "-" })] = arguments[index + 1]
                index += 2
            }
        }

        func require(_ name: String) -> String {
            guard let value = values[name] else { TestDaemon.fail("missing --\(name)") }
            return value
        }
    }

    static func run(_ options: Options) async throws {
        let signals = catchSignals([SIGTERM, SIGUSR1])
        let node = try NodeSupervisor(NodeSupervisor.Configuration(
            stateDirectory: options.require("state"), cgroupParent: options.require("parent"), journal: .disabled))
        let rootfs = options.require("rootfs")
        let count = Int(options.require("count")) ?? 0
        let prefix = options.require("prefix")
        var lines: [String] = []
        for index in 0..<count {
            let launch = LaunchSpec(
                instanceID: "\(prefix)-\(index)",
                command: ["/bin/sh", "-c", "i=0; while true; do i=$((i+1)); echo $i; sleep 0.02; done"],
                root: .directory(rootfs))
            let policy = SupervisionPolicy(restart: RestartPolicy(initialDelay: .milliseconds(100)), stopTimeout: .seconds(2))
            let instance = try await node.supervise(SupervisedService(serviceName: prefix, launch: launch, policy: policy))
            let status = await instance.status()
            lines.append([status.instanceID, "\(status.pid ?? 0)", "\(status.launchCount)", "\(status.restartCount)",
                          "\(status.adopted)", "\(status.phase)", status.lastExit.map { "\($0)" } ?? "-"].joined(separator: "\t"))
        }
        let statusPath = options.require("status")
        try (lines.joined(separator: "\n") + "\n").write(toFile: statusPath + ".tmp", atomically: false, encoding: .utf8)
        rename(statusPath + ".tmp", statusPath)
        let signal = await firstSignal(signals)
        if signal == SIGTERM {
            await node.shutdown()
        } else {
            await node.detach()
        }
        exit(0)
    }

    static func journal(_ options: Options) async throws {
        let node = try NodeSupervisor(NodeSupervisor.Configuration(
            stateDirectory: options.require("state"), cgroupParent: options.require("parent"), journal: .automatic))
        guard node.forwardsToJournal else { fail("no journald socket at /run/systemd/journal/socket") }
        let lines = Int(options.require("lines")) ?? 1
        let launch = LaunchSpec(
            instanceID: options.require("id"),
            command: ["/bin/sh", "-c", "i=0; while [ $i -lt \(lines) ]; do i=$((i+1)); echo \"out $i\"; echo \"err $i\" >&2; done"],
            root: .host)
        let service = SupervisedService(serviceName: "journal-test", launch: launch,
                                        policy: SupervisionPolicy(restart: RestartPolicy(policy: .never)))
        let instance = try await node.supervise(service)
        _ = try await instance.wait(timeout: .seconds(60)) { $0.isFinished }
        await node.detach()
        exit(0)
    }

    static func agent(status: String) async {
        let signals = catchSignals([SIGTERM])
        let notifier = SystemdNotifier()
        notifier.ready(status: status)
        FileHandle.standardOutput.write(Data("agent running\n".utf8))
        let watchdog = notifier.startWatchdog()
        _ = await firstSignal(signals)
        notifier.stopping()
        watchdog?.cancel()
        exit(0)
    }

    /// Starts catching `signals` at once (so that none sent from now on is lost to its default
    /// action); the stream yields them as they arrive.
    static func catchSignals(_ signals: [Int32]) -> AsyncStream<Int32> {
        let (stream, continuation) = AsyncStream<Int32>.makeStream()
        var sources: [any DispatchSourceSignal] = []
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(number) }
            source.resume()
            sources.append(source)
        }
        let kept = SourceBox(sources)
        continuation.onTermination = { _ in kept.release() }
        return stream
    }

    /// The first signal a `catchSignals` stream yields.
    static func firstSignal(_ stream: AsyncStream<Int32>) async -> Int32 {
        for await number in stream { return number }
        return SIGTERM
    }
}

/// Keeps signal sources alive while their stream is in use.
final class SourceBox: @unchecked Sendable {
    private var sources: [any DispatchSourceSignal]

    init(_ sources: [any DispatchSourceSignal]) {
        self.sources = sources
    }

    func release() {
        sources = []
    }
}
