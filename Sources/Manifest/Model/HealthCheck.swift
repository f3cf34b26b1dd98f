/// Accepted HTTP status codes, `"200-399"` or a single code.
public struct StatusRange: ManifestValue, Hashable, CustomStringConvertible {
    public var lowest: Int
    public var highest: Int

    public init(_ lowest: Int, _ highest: Int) {
        self.lowest = lowest
        self.highest = highest
    }

    public func contains(_ status: Int) -> Bool { status >= lowest && status <= highest }

    public var description: String { lowest == highest ? String(lowest) : "\(lowest)-\(highest)" }

    public static var schema: ValueSchema {
        ValueSchema(typeName: "status range", json: ["oneOf": [["type": "integer", "minimum": 100, "maximum": 599], ["type": "string", "pattern": "^[1-5][0-9][0-9](-[1-5][0-9][0-9])?$"]]])
    }

    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> StatusRange? {
        let bounds: [Int]?
        switch json {
        case .integer(let number): bounds = [Int(number)]
        case .string(let text):
            let parts = text.split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
            bounds = parts.count <= 2 && parts.allSatisfy { $0 != nil } ? parts.compactMap { $0 } : nil
        default: bounds = nil
        }
        guard let bounds, let lowest = bounds.first, let highest = bounds.last else {
            issues.report(path(), "\(json.textForMessage) is not a status range; write e.g. \"200-399\" or 200")
            return nil
        }
        guard (100...599).contains(lowest), (100...599).contains(highest) else {
            issues.report(path(), "\(json.textForMessage) is outside the HTTP status codes 100 to 599")
            return nil
        }
        guard lowest <= highest else {
            issues.report(path(), "\(json.textForMessage) runs backwards; write \"\(highest)-\(lowest)\"")
            return nil
        }
        return StatusRange(lowest, highest)
    }

    public var json: JSONValue { lowest == highest ? .integer(Int64(lowest)) : .string(description) }
}

/// Probe: an HTTP GET of a path on one of the instance's ports.
public struct HTTPCheck: ManifestObject, Hashable {
    public var port: String
    public var path: String
    public var status: StatusRange

    public init(port: String, path: String = "/", status: StatusRange = StatusRange(200, 399)) {
        self.port = port
        self.path = path
        self.status = status
    }

    public static let spec = ObjectSpec(
        "HTTPCheck", doc: "An HTTP GET of `path` on the instance's port at 127.0.0.1, from the agent's side (inside the instance's network namespace when `network.mode` is `private`).",
        fields: [
            FieldSpec("port", String.self, required: true, example: "http", doc: "The name of one of `network.ports`."),
            FieldSpec("path", String.self, default: "/", example: "/healthz", doc: "The request path, starting with `/`; may carry a query."),
            FieldSpec("status", StatusRange.self, default: "200-399", doc: "Status codes that count as passing: `\"200-399\"` or a single code."),
        ])

    public init?(reading reader: ObjectReader) {
        let port = reader.read("port", as: String.self)
        path = reader.read("path") ?? "/"
        status = reader.read("status") ?? StatusRange(200, 399)
        guard let port else { return nil }
        self.port = port
        if !path.hasPrefix("/") {
            reader.report("path", "\"\(path)\" must start with '/'; write \"/\(path)\"")
        } else if path.contains(where: { $0 == " " || $0.asciiValue.map { $0 < 0x20 } == true }) {
            reader.report("path", "\"\(path)\" contains spaces or control characters; percent-encode them")
        }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("port", port)
        writer.write("path", path)
        writer.write("status", status)
    }
}

/// Probe: a TCP connection to one of the instance's ports.
public struct TCPCheck: ManifestObject, Hashable {
    public var port: String

    public static let spec = ObjectSpec(
        "TCPCheck", doc: "A TCP connect to the instance's port at 127.0.0.1 (inside the instance's network namespace when `network.mode` is `private`); passing when the connection is accepted.",
        fields: [FieldSpec("port", String.self, required: true, example: "http", doc: "The name of one of `network.ports`.")])

    public init(port: String) {
        self.port = port
    }

    public init?(reading reader: ObjectReader) {
        guard let port = reader.read("port", as: String.self) else { return nil }
        self.port = port
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("port", port)
    }
}

/// Probe: a command run inside the instance's namespaces and cgroup.
public struct ExecCheck: ManifestObject, Hashable {
    public var command: [String]

    public static let spec = ObjectSpec(
        "ExecCheck", doc: "A command run inside the instance's namespaces and cgroup; passing when it exits 0 within the timeout.",
        fields: [FieldSpec("command", [String].self, required: true, example: ["/bin/sh", "-c", "test -f /tmp/ready"], constraints: [.nonEmpty], doc: "The argv to run; the first element is the program.")])

    public init(command: [String]) {
        self.command = command
    }

    public init?(reading reader: ObjectReader) {
        guard let command = reader.read("command", as: [String].self) else { return nil }
        self.command = command
        Command.reportProblems(command, at: reader.path.appending("command"), reader)
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("command", command)
    }
}

/// How the agent decides whether an instance is healthy.
public struct HealthCheck: ManifestObject, Hashable {
    /// The probe: exactly one of HTTP, TCP or a command.
    public enum Probe: Hashable, Sendable {
        case http(HTTPCheck)
        case tcp(TCPCheck)
        case exec(ExecCheck)

        /// The port the probe connects to, if any.
        public var portName: String? {
            switch self {
            case .http(let check): check.port
            case .tcp(let check): check.port
            case .exec: nil
            }
        }
    }

    public var probe: Probe
    public var interval: Duration
    public var timeout: Duration
    public var startPeriod: Duration
    public var healthyThreshold: Int
    public var unhealthyThreshold: Int

    public init(
        probe: Probe, interval: Duration = .seconds(10), timeout: Duration = .seconds(2), startPeriod: Duration = .zero,
        healthyThreshold: Int = 1, unhealthyThreshold: Int = 3
    ) {
        self.probe = probe
        self.interval = interval
        self.timeout = timeout
        self.startPeriod = startPeriod
        self.healthyThreshold = healthyThreshold
        self.unhealthyThreshold = unhealthyThreshold
    }

    public static let spec = ObjectSpec(
        "HealthCheck",
        doc: "How the agent checks an instance: exactly one of `http`, `tcp` or `exec`, repeated every `interval`. An instance starts as *starting*, becomes *healthy* after `healthyThreshold` passes in a row and *unhealthy* after `unhealthyThreshold` failures in a row; an unhealthy instance is restarted according to `restart`.",
        fields: [
            FieldSpec("http", HTTPCheck.self, example: ["port": "http", "path": "/healthz"], doc: "Probe with an HTTP GET."),
            FieldSpec("tcp", TCPCheck.self, example: ["port": "db"], doc: "Probe with a TCP connect."),
            FieldSpec("exec", ExecCheck.self, example: ["command": ["/bin/pg_isready"]], doc: "Probe with a command inside the instance."),
            FieldSpec("interval", Duration.self, default: "10s", constraints: [.positiveDuration], doc: "Time between the starts of two checks."),
            FieldSpec("timeout", Duration.self, default: "2s", constraints: [.positiveDuration], doc: "How long one check may take before it counts as failed; at most `interval`."),
            FieldSpec("startPeriod", Duration.self, default: "0s", example: "30s", doc: "Grace time after start during which failures do not count towards `unhealthyThreshold` (until the instance is first healthy); a failure still ends a run of passes."),
            FieldSpec("healthyThreshold", Int.self, default: 1, constraints: [.integerRange(1...100)], doc: "Consecutive passes that make the instance healthy."),
            FieldSpec("unhealthyThreshold", Int.self, default: 3, constraints: [.integerRange(1...100)], doc: "Consecutive failures that make it unhealthy."),
        ],
        extraSchema: [.init("oneOf", [["required": ["http"]], ["required": ["tcp"]], ["required": ["exec"]]])])

    public init?(reading reader: ObjectReader) {
        var probes: [Probe] = []
        if let http = reader.read("http", as: HTTPCheck.self) { probes.append(.http(http)) }
        if let tcp = reader.read("tcp", as: TCPCheck.self) { probes.append(.tcp(tcp)) }
        if let exec = reader.read("exec", as: ExecCheck.self) { probes.append(.exec(exec)) }
        interval = reader.read("interval") ?? .seconds(10)
        timeout = reader.read("timeout") ?? .seconds(2)
        startPeriod = reader.read("startPeriod") ?? .zero
        healthyThreshold = reader.read("healthyThreshold") ?? 1
        unhealthyThreshold = reader.read("unhealthyThreshold") ?? 3
        let written = ["http", "tcp", "exec"].filter(reader.isPresent)
        if written.isEmpty {
            reader.report(at: reader.path, "needs a probe: add one of \"http\", \"tcp\" or \"exec\"")
        } else if written.count > 1 {
            reader.report(written[1], "only one probe is allowed, and \"\(written[0])\" is already given; remove one")
        }
        if timeout > interval, !reader.isInvalid("timeout"), !reader.isInvalid("interval") {
            reader.report("timeout", "\(DurationText.format(timeout)) is longer than the interval \(DurationText.format(interval)); checks would overlap — make it at most the interval")
        }
        guard probes.count == 1, let probe = probes.first else { return nil }
        self.probe = probe
    }

    public func write(to writer: inout ObjectWriter) {
        switch probe {
        case .http(let check): writer.write("http", check)
        case .tcp(let check): writer.write("tcp", check)
        case .exec(let check): writer.write("exec", check)
        }
        writer.write("interval", interval)
        writer.write("timeout", timeout)
        writer.write("startPeriod", startPeriod)
        writer.write("healthyThreshold", healthyThreshold)
        writer.write("unhealthyThreshold", unhealthyThreshold)
    }
}
