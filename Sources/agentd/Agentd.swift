import Agent
import ArgumentParser
import Controller
import Foundation
import Logging
import Manifest
import Metrics
import Prometheus

/// agentd: runs on every host; `--dev` runs a one-node cluster for trying Flotilla out.
@main
struct Agentd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agentd",
        abstract: "The Flotilla agent: runs services on this host and takes part in the cluster.",
        discussion: """
            agentd --dev runs a one-node cluster (this node is the only voter) with its state in a \
            temporary directory unless --state-dir is given. Its API listens on a unix socket that \
            only root can use; deployctl talks to it.
            Configuration file (--config, JSON): {"nodeName": "...", "stateDirectory": "...", \
            "apiSocket": "...", "apiTCP": "127.0.0.1:4646", "tokenFile": "...", "labels": {"zone": "a"}, \
            "portRange": "20000-32000", "advertiseAddress": "10.0.0.1:4647"}. Flags win over the file.
            """,
        version: Agent.version)

    @Flag(help: "Development mode: a one-node cluster, everything on this host.")
    var dev = false

    @Option(help: "A JSON configuration file.")
    var config: String?

    @Option(help: "Where the Raft log and instance state live (default /var/lib/flotilla; with --dev a temporary directory).")
    var stateDir: String?

    @Option(help: "This node's name (default: the host name).")
    var nodeName: String?

    @Option(name: .customLong("label"), help: "A node label, KEY=VALUE (repeatable).")
    var labels: [String] = []

    @Option(help: "The API's unix socket (default /run/flotilla/api.sock).")
    var apiSocket: String?

    @Option(help: "Also serve the API on TCP, HOST:PORT (needs --token-file).")
    var apiTcp: String?

    @Option(help: "A file holding the bearer token TCP API clients must present.")
    var tokenFile: String?

    @Option(help: "Ports handed to dynamic ports of instances, LOW-HIGH (default 20000-32000).")
    var portRange: String?

    @Option(help: "The cgroup every instance of this node goes under (default flotilla).")
    var cgroupParent: String = "flotilla"

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String = "info"

    @Option(help: "The longest a blocking query waits and an event or log stream lasts before its client resumes, as manifests write durations (default 5m).")
    var maxQueryWait: String?

    func run() async throws {
        let file = try config.map(AgentConfigFile.load) ?? AgentConfigFile()
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let logger = Logger(label: "agentd")

        var labelMap = file.labels ?? [:]
        for label in labels {
            let parts = label.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { throw ValidationError("--label \(label): write KEY=VALUE") }
            labelMap[parts[0]] = parts[1]
        }
        let rangeText = portRange ?? file.portRange
        var range = PortRange.defaultDynamic
        if let rangeText {
            let bounds = rangeText.split(separator: "-").compactMap { Int($0) }
            guard bounds.count == 2, bounds[0] >= 1, bounds[0] <= bounds[1], bounds[1] <= 65535 else {
                throw ValidationError("port range \(rangeText): write LOW-HIGH within 1-65535, e.g. 20000-32000")
            }
            range = PortRange(bounds[0], bounds[1])
        }
        var stateDirectory = stateDir ?? file.stateDirectory ?? "/var/lib/flotilla"
        if dev, stateDir == nil, file.stateDirectory == nil {
            stateDirectory = NSTemporaryDirectory() + "flotilla-dev-\(getpid())"
        }
        var tcpHost: String?
        var tcpPort: Int?
        if let tcp = apiTcp ?? file.apiTCP {
            guard let colon = tcp.lastIndex(of: ":"), let port = Int(tcp[tcp.index(after: colon)...]) else {
                throw ValidationError("--api-tcp \(tcp): write HOST:PORT, e.g. 127.0.0.1:4646")
            }
            tcpHost = String(tcp[..<colon])
            tcpPort = port
        }
        var token: String?
        if let tokenPath = tokenFile ?? file.tokenFile {
            guard let text = try? String(contentsOfFile: tokenPath, encoding: .utf8) else {
                throw ValidationError("cannot read the token file \(tokenPath)")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var maxWait = Duration.seconds(300)
        if let text = maxQueryWait {
            do {
                maxWait = try DurationText.parse(text)
            } catch {
                throw ValidationError("--max-query-wait \(text) \(error.message)")
            }
            guard maxWait > .zero else { throw ValidationError("--max-query-wait \(text): give a duration above zero, e.g. 5m") }
        }
        let configuration = AgentConfiguration(
            nodeName: nodeName ?? file.nodeName ?? NodeIdentity.hostname(), stateDirectory: stateDirectory,
            apiSocketPath: apiSocket ?? file.apiSocket ?? "/run/flotilla/api.sock", apiTCPHost: tcpHost, apiTCPPort: tcpPort, apiToken: token,
            labels: labelMap, portRange: range, advertiseAddress: file.advertiseAddress ?? "127.0.0.1:4647", cgroupParent: cgroupParent, dev: dev,
            maxQueryWait: maxWait)
        logger.info("starting", metadata: ["node": "\(configuration.nodeName)", "state": "\(stateDirectory)", "dev": "\(dev)"])
        let agent = try Agent(configuration: configuration, logger: logger, registry: registry)
        try await agent.run()
    }
}

/// agentd's configuration file. Unknown keys are refused, with the known ones listed.
struct AgentConfigFile: Codable {
    var nodeName: String?
    var stateDirectory: String?
    var apiSocket: String?
    var apiTCP: String?
    var tokenFile: String?
    var labels: [String: String]?
    var portRange: String?
    var advertiseAddress: String?

    static func load(_ path: String) throws -> AgentConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read the configuration file \(path)") }
        let known: Set<String> = ["nodeName", "stateDirectory", "apiSocket", "apiTCP", "tokenFile", "labels", "portRange", "advertiseAddress"]
        if let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            for key in object.keys where !known.contains(key) {
                throw ValidationError("\(path): unknown key \"\(key)\"; known keys: \(known.sorted().joined(separator: ", "))")
            }
        }
        do {
            return try JSONDecoder().decode(AgentConfigFile.self, from: data)
        } catch {
            throw ValidationError("\(path): \(error)")
        }
    }
}

