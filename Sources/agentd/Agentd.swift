import Agent
import Cluster
import ArgumentParser
import Controller
import Foundation
import Logging
import Manifest
import Metrics
import Prometheus
import Supervisor

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
            "portRange": "20000-32000", "advertiseAddress": "10.0.0.1:4647", "bootstrap": true, "join": ["10.0.0.2:4647"], \
            "joinToken": "flt1...", "server": true, "clusterListen": "0.0.0.0:4647", "certificateLifetime": "24h", \
            "heartbeatInterval": "2s", "nodeDownTimeout": "15s", "bootstrapExpect": 3, "caDirectory": "...", "cgroupParent": "flotilla", "logLevel": "info", "maxQueryWait": "5m", \
            "dnsAddress": "127.0.0.1:8600", "dnsDomain": "flotilla", "dnsTTL": "0s", "registryCA": "/etc/flotilla/registry-ca.pem", \
            "registryCredentials": "/etc/flotilla/registry-auth.json", "registryPlainHTTP": ["registry.lan:5000"], "imageGrace": "1h", \
            "proxyNice": -10}. \
            Flags win over the file.
            A cluster: the first server runs with --bootstrap, or N servers form it together, each with --bootstrap-expect N \
            --ca-dir DIR --join HOST:PORT (the others); every next server with --server --join HOST:PORT --token T \
            (the token is in STATE/cluster/join-token on the first); a client (runs services, takes no part in Raft) \
            with --join HOST:PORT --token T. They talk over mutual TLS on the cluster port.
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

    @Option(help: "Ports handed to dynamic ports of instances, LOW-HIGH (default 20000-32000; keep it out of net.ipv4.ip_local_port_range, which outgoing connections use).")
    var portRange: String?

    @Option(help: "The cgroup every instance of this node goes under (default flotilla).")
    var cgroupParent: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error.")
    var logLevel: String?

    @Option(help: "The longest a blocking query waits and an event or log stream lasts before its client resumes, as manifests write durations (default 5m).")
    var maxQueryWait: String?

    @Flag(help: "Start a new cluster with this agent as its first server: makes the cluster CA and a join token (in STATE/cluster/join-token).")
    var bootstrap = false

    @Option(help: "Join the cluster of the server at HOST:PORT (its cluster port); needs --token. A client unless --server. Repeatable: each is tried in turn. With --bootstrap-expect: the other servers to form the cluster with.")
    var join: [String] = []

    @Option(help: "Form a new cluster with N servers (1 to 5): each is started with --bootstrap-expect N, --ca-dir and --join addresses of the others; they wait for one another, then all start as voters.")
    var bootstrapExpect: Int?

    @Option(help: "With --bootstrap-expect: the directory with the cluster CA and join token every forming server is given (made once with `deployctl cluster ca create --out DIR`).")
    var caDir: String?

    @Flag(help: "With --join: join as a server (a Raft member, learner first, promoted to voter up to 5) rather than a client.")
    var server = false

    @Option(help: "How often this node tells the leader it is alive, as manifests write durations (default 2s).")
    var heartbeatInterval: String?

    @Option(help: "After how long without a heartbeat the leader marks a node down and its instances lost (default 15s).")
    var nodeDownTimeout: String?

    @Option(help: "The join token a server of the cluster shows (STATE/cluster/join-token there); it also pins the cluster's CA.")
    var token: String?

    @Option(help: "Where this agent's cluster port listens, HOST:PORT (default: all addresses, the port of --advertise).")
    var clusterListen: String?

    @Option(help: "How other agents reach this one's cluster port, HOST:PORT (default 127.0.0.1:4647).")
    var advertise: String?

    @Option(help: "How long the node certificates the first server issues last, as manifests write durations (default 24h); agents renew them at two thirds.")
    var certificateLifetime: String?

    @Option(help: "Where service discovery's DNS server listens, HOST:PORT, UDP and TCP (default 127.0.0.1:8600), or off.")
    var dnsAddr: String?

    @Option(help: "The DNS domain services are answered under: web.service.DOMAIN (default flotilla).")
    var dnsDomain: String?

    @Option(help: "The TTL of DNS answers, as manifests write durations (default 0s: clients ask again, and see a deregistration at once).")
    var dnsTtl: String?

    @Option(help: "A PEM file of CA certificates trusted for image registries, beside the system's.")
    var registryCa: String?

    @Option(help: "A JSON file of registry credentials, as Docker's config.json writes them: {\"auths\": {\"registry.example:5000\": {\"auth\": \"BASE64(user:password)\"}}}.")
    var registryCredentials: String?

    @Option(help: "A registry, HOST:PORT as images name it, that this node may reach over plain HTTP when it does not speak TLS (Docker's insecure-registries; TLS is tried first); repeat for more. Registries on this machine (localhost, 127.0.0.0/8, [::1]) need not be listed.")
    var registryPlainHttp: [String] = []

    @Option(help: "How long an image no instance uses stays on this node, as manifests write durations (default 1h).")
    var imageGrace: String?

    @Option(parsing: .unconditional, help: "The nice value (-20 to 19) of the thread forwarding published ports and upstreams (default -10: the instances' traffic goes ahead of their computing; 0 treats it as any task).")
    var proxyNice: Int32?

    func run() async throws {
        let file = try config.map(AgentConfigFile.load) ?? AgentConfigFile()
        let levelText = logLevel ?? file.logLevel ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ValidationError("log level \(levelText): give one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
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
            guard let address = HostPort(tcp) else {
                throw ValidationError("--api-tcp \(tcp): write HOST:PORT, e.g. 127.0.0.1:4646")
            }
            tcpHost = address.host
            tcpPort = address.port
        }
        var token: String?
        if let tokenPath = tokenFile ?? file.tokenFile {
            guard let text = try? String(contentsOfFile: tokenPath, encoding: .utf8) else {
                throw ValidationError("cannot read the token file \(tokenPath)")
            }
            token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        var maxWait = Duration.seconds(300)
        if let text = maxQueryWait ?? file.maxQueryWait {
            do {
                maxWait = try DurationText.parse(text)
            } catch {
                throw ValidationError("--max-query-wait \(text) \(error.message)")
            }
            guard maxWait > .zero else { throw ValidationError("--max-query-wait \(text): give a duration above zero, e.g. 5m") }
        }
        let cluster = try clusterSettings(file)
        let heartbeat = try positiveDuration(heartbeatInterval ?? file.heartbeatInterval, flag: "--heartbeat-interval", example: "2s") ?? .seconds(2)
        let downTimeout = try positiveDuration(nodeDownTimeout ?? file.nodeDownTimeout, flag: "--node-down-timeout", example: "15s") ?? .seconds(15)
        guard downTimeout > heartbeat * 2 else {
            throw ValidationError("--node-down-timeout must be more than twice --heartbeat-interval (\(heartbeat)), or one late heartbeat marks a node down")
        }
        var configuration = AgentConfiguration(
            nodeName: nodeName ?? file.nodeName ?? NodeIdentity.hostname(), stateDirectory: stateDirectory,
            apiSocketPath: apiSocket ?? file.apiSocket ?? "/run/flotilla/api.sock", apiTCPHost: tcpHost, apiTCPPort: tcpPort, apiToken: token,
            labels: labelMap, portRange: range, advertiseAddress: advertise ?? file.advertiseAddress ?? "127.0.0.1:4647",
            heartbeatInterval: heartbeat, nodeDownTimeout: downTimeout, cgroupParent: cgroupParent ?? file.cgroupParent ?? "flotilla", dev: dev, maxQueryWait: maxWait, cluster: cluster,
            dns: try dnsSettings(file))
        configuration.registryAccess.caFile = registryCa ?? file.registryCA
        configuration.registryAccess.credentialsFile = registryCredentials ?? file.registryCredentials
        configuration.registryAccess.plainHTTPRegistries = try Self.plainHTTPRegistries(registryPlainHttp.isEmpty ? file.registryPlainHTTP ?? [] : registryPlainHttp)
        for (flag, path) in [("--registry-ca", configuration.registryAccess.caFile), ("--registry-credentials", configuration.registryAccess.credentialsFile)] {
            if let path, !FileManager.default.isReadableFile(atPath: path) { throw ValidationError("\(flag) \(path): cannot read the file") }
        }
        if let text = imageGrace ?? file.imageGrace {
            do {
                configuration.imageGracePeriod = try DurationText.parse(text)
            } catch {
                throw ValidationError("--image-grace \(text) \(error.message)")
            }
        }
        if let nice = proxyNice ?? file.proxyNice {
            guard NodeSupervisor.Configuration.niceValues.contains(nice) else {
                throw ValidationError("\(proxyNice == nil ? "proxyNice" : "--proxy-nice") \(nice): give a nice value from -20 to 19, e.g. -10")
            }
            configuration.forwardingNice = nice
        }
        logger.info("starting", metadata: ["node": "\(configuration.nodeName)", "state": "\(stateDirectory)", "dev": "\(dev)"])
        if let overlap = EphemeralPortRange.overlap(with: range) {
            logger.warning("\(EphemeralPortRange.warning(for: range, overlap: overlap))")
        }
        if cluster?.role == .client {
            try await ClientAgent.make(configuration: configuration, logger: logger, registry: registry).run()
        } else {
            try await Agent.make(configuration: configuration, logger: logger, registry: registry).run()
        }
    }

    /// `--registry-plain-http` values, each a registry as image references name it: by the
    /// manifest's image grammar (`ImageName`), so that a value no image could name (a scheme, a
    /// path, a bare name that images read as a Docker Hub account) is refused, not kept unused.
    static func plainHTTPRegistries(_ values: [String]) throws -> [String] {
        for value in values where (try? ImageName(parsing: value + "/image"))?.registry != value {
            throw ValidationError(
                "--registry-plain-http \"\(value)\": give a registry as images name it, HOST:PORT, a host with a dot, or localhost "
                    + "(registry.lan:5000), without a scheme or path")
        }
        return values
    }

    /// The DNS server's settings from the flags and the file; nil with `--dns-addr off`.
    func dnsSettings(_ file: AgentConfigFile) throws -> DNSSettings? {
        let addressText = dnsAddr ?? file.dnsAddress ?? "127.0.0.1:\(DNSSettings.defaultPort)"
        guard addressText != "off" else { return nil }
        guard let address = HostPort(addressText) else {
            throw ValidationError("--dns-addr \(addressText): write HOST:PORT, e.g. 127.0.0.1:8600, or off")
        }
        let domain = (dnsDomain ?? file.dnsDomain ?? "flotilla").lowercased()
        let labels = domain.hasSuffix(".") ? domain.dropLast().split(separator: ".", omittingEmptySubsequences: false) : domain.split(separator: ".", omittingEmptySubsequences: false)
        guard !labels.isEmpty, labels.allSatisfy({ label in
            (1...63).contains(label.count) && label.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") } && label.first != "-" && label.last != "-"
        }) else {
            throw ValidationError("--dns-domain \(domain): write DNS labels joined by dots (letters, digits and -), e.g. flotilla or consul.internal")
        }
        var ttl = Duration.zero
        if let text = dnsTtl ?? file.dnsTTL {
            do {
                ttl = try DurationText.parse(text)
            } catch {
                throw ValidationError("--dns-ttl \(text) \(error.message)")
            }
            guard ttl <= .seconds(3600) else { throw ValidationError("--dns-ttl \(text): give at most 1h; answers change as instances come and go") }
        }
        return DNSSettings(host: address.host, port: address.port, domain: domain, ttl: ttl)
    }

    /// A duration flag's value, which must be above zero.
    func positiveDuration(_ text: String?, flag: String, example: String) throws -> Duration? {
        guard let text else { return nil }
        let duration: Duration
        do {
            duration = try DurationText.parse(text)
        } catch {
            throw ValidationError("\(flag) \(text) \(error.message)")
        }
        guard duration > .zero else { throw ValidationError("\(flag) \(text): give a duration above zero, e.g. \(example)") }
        return duration
    }

    /// The cluster settings from the flags and the file, or nil for a single node.
    func clusterSettings(_ file: AgentConfigFile) throws -> ClusterSettings? {
        let bootstrap = self.bootstrap || file.bootstrap == true
        let joins = self.join.isEmpty ? file.join?.addresses ?? [] : self.join
        let join = joins.first
        let expect = bootstrapExpect ?? file.bootstrapExpect
        let caDirectory = caDir ?? file.caDirectory
        if expect == nil, caDirectory != nil { throw ValidationError("--ca-dir is for --bootstrap-expect N (servers forming a new cluster)") }
        guard bootstrap || join != nil || expect != nil else {
            if token != nil || file.joinToken != nil { throw ValidationError("--token is for --join HOST:PORT; give both") }
            if server || file.server == true { throw ValidationError("--server is for --join HOST:PORT (a server that joins); the first server runs with --bootstrap") }
            return nil
        }
        guard !dev else { throw ValidationError("--dev runs a one-node cluster; leave it out with --bootstrap, --bootstrap-expect or --join") }
        if expect != nil, bootstrap { throw ValidationError("--bootstrap starts a cluster alone and --bootstrap-expect with others; give one of them") }
        guard !(bootstrap && join != nil) else {
            throw ValidationError("--bootstrap starts a new cluster and --join enters one; give one of them")
        }
        let joinsAsServer = self.server || file.server == true
        if bootstrap && self.server { throw ValidationError("--bootstrap makes a server already; leave --server out") }
        let advertise = self.advertise ?? file.advertiseAddress ?? "127.0.0.1:4647"
        guard let advertised = HostPort(advertise) else {
            throw ValidationError("--advertise \(advertise): write HOST:PORT, e.g. 10.0.0.1:4647")
        }
        let listenText = clusterListen ?? file.clusterListen ?? "0.0.0.0:\(advertised.port)"
        guard let listen = HostPort(listenText) else {
            throw ValidationError("--cluster-listen \(listenText): write HOST:PORT, e.g. 0.0.0.0:4647")
        }
        var targets: [HostPort] = []
        for address in joins {
            guard let target = HostPort(address) else { throw ValidationError("--join \(address): write HOST:PORT of a server's cluster port") }
            targets.append(target)
        }
        var start = ClusterSettings.Start.bootstrap
        if let expect {
            guard (1...5).contains(expect) else {
                throw ValidationError("--bootstrap-expect \(expect): give 1 to 5 (a cluster has up to 5 voters; further servers join with --server --join)")
            }
            guard let caDirectory else {
                throw ValidationError("--bootstrap-expect needs --ca-dir DIR: the cluster CA and join token every forming server is given (make them once with `deployctl cluster ca create --out DIR`)")
            }
            guard token == nil, file.joinToken == nil else {
                throw ValidationError("--token is for joining a formed cluster; forming servers take the token in --ca-dir")
            }
            guard expect == 1 || !targets.isEmpty else {
                throw ValidationError("--bootstrap-expect \(expect) needs --join HOST:PORT of the other servers (repeatable)")
            }
            start = .form(expect: expect, servers: targets, caDirectory: caDirectory)
        } else if !targets.isEmpty {
            guard let token = token ?? file.joinToken else {
                throw ValidationError("--join needs --token: the join token of the cluster (STATE/cluster/join-token on a server)")
            }
            start = .join(servers: targets, token: token)
        }
        var lifetime: Duration?
        if let text = certificateLifetime ?? file.certificateLifetime {
            let parsed: Duration
            do {
                parsed = try DurationText.parse(text)
            } catch {
                throw ValidationError("--certificate-lifetime \(text) \(error.message)")
            }
            guard parsed >= Duration.seconds(10) else { throw ValidationError("--certificate-lifetime \(text): give at least 10s (24h is usual)") }
            lifetime = parsed
        }
        return ClusterSettings(
            start: start, role: bootstrap || joinsAsServer || expect != nil ? .server : .client, listenHost: listen.host, listenPort: listen.port, advertiseAddress: advertise, certificateLifetime: lifetime)
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
    var bootstrap: Bool?
    var join: JoinAddresses?
    var bootstrapExpect: Int?
    var caDirectory: String?
    var cgroupParent: String?
    var logLevel: String?
    var maxQueryWait: String?
    var joinToken: String?
    var clusterListen: String?
    var certificateLifetime: String?
    var server: Bool?
    var heartbeatInterval: String?
    var nodeDownTimeout: String?
    var dnsAddress: String?
    var dnsDomain: String?
    var dnsTTL: String?
    var registryCA: String?
    var registryCredentials: String?
    var registryPlainHTTP: [String]?
    var imageGrace: String?
    var proxyNice: Int32?

    static func load(_ path: String) throws -> AgentConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read the configuration file \(path)") }
        let known: Set<String> = [
            "nodeName", "stateDirectory", "apiSocket", "apiTCP", "tokenFile", "labels", "portRange", "advertiseAddress", "bootstrap", "join",
            "joinToken", "clusterListen", "certificateLifetime", "server", "heartbeatInterval", "nodeDownTimeout", "bootstrapExpect",
            "caDirectory", "cgroupParent", "logLevel", "maxQueryWait", "dnsAddress", "dnsDomain", "dnsTTL", "registryCA", "registryCredentials",
            "registryPlainHTTP", "imageGrace", "proxyNice",
        ]
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


/// The file's `join`: one address, or a list of them.
struct JoinAddresses: Codable {
    var addresses: [String]

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let one = try? container.decode(String.self) {
            addresses = [one]
        } else {
            addresses = try container.decode([String].self)
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(addresses)
    }
}
