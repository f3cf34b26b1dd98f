import AgentAPI
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

private let isRoot = getuid() == 0

/// The agent's local proxy for `upstreams`, with real services behind it: connections spread
/// over passing instances only, follow the catalog, survive a deregistration for the drain
/// delay, retry and eject an instance that refuses them, and exist inside a private network
/// namespace before the caller's first instruction.
@Suite(.dedicatedThread, .serialized, .enabled(if: isRoot, "needs root: agentd launches services in namespaces and cgroups"), .timeLimit(.minutes(10)))
struct UpstreamProxyTests {
    static let busybox = "/var/lib/flotilla/images/busybox"

    /// An application `name` of one service that calls `upstreams` and otherwise sleeps.
    static func caller(_ name: String, mode: String = "host", replicas: Int = 1, upstreams: String, command: String = "exec sleep 100000") -> String {
        """
        { "name": "\(name)", "services": [ {
            "name": "\(name)", "command": ["/bin/sh", "-c", \(jsonString(command))], "rootfs": "\(busybox)",
            "mounts": [ { "type": "tmpfs", "target": "/tmp/out", "size": "1Mi" } ],
            "resources": { "cpu": 0.1, "memory": "16Mi" }, "network": { "mode": "\(mode)" }, "replicas": \(replicas),
            "upstreams": \(upstreams) } ] }
        """
    }

    static func jsonString(_ text: String) -> String {
        String(decoding: try! JSONEncoder().encode(text), as: UTF8.self)
    }

    /// Deploys application flaky: three passing instances (no health check) in network `mode`,
    /// of which the first to start (the one to make directory `lock`) listens on nothing. Returns
    /// that one, once the other two answer (they may take a moment to listen once running).
    static func deployFlaky(_ agent: DevAgent, lock: String, mode: String) throws -> CatalogInstanceInfo {
        let manifest = flaky(lock: lock, mode: mode)
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest).status == 0, "\(agent.agentLog())")
        try agent.waitUntil("3 passing instances") { try Self.passing(agent, "flaky").count == 3 }
        var refusing: [CatalogInstanceInfo] = []
        try agent.waitUntil("two instances to answer", timeout: 20) {
            refusing = try Self.passing(agent, "flaky").filter { !Self.outcome(port: $0.port?.number ?? 0).hasPrefix("answered") }
            return refusing.count == 1
        }
        return refusing[0]
    }

    private static func flaky(lock: String, mode: String) -> String {
        let command = "if mkdir \(lock) 2>/dev/null; then exec sleep 100000; fi; "
            + "d=$(mktemp -d); echo \"<h1>Hello from $(hostname)</h1>\" > $d/index.html; exec \(Self.busybox)/bin/busybox httpd -f -p $PORT_HTTP -h $d"
        return """
            { "name": "flaky", "services": [ { "name": "flaky", "command": ["/bin/sh", "-c", \(Self.jsonString(command))],
              "resources": { "cpu": 0.1, "memory": "32Mi" }, "network": { "mode": "\(mode)", "ports": [ { "name": "http" } ] }, "replicas": 3 } ] }
            """
    }

    static func passing(_ agent: DevAgent, _ name: String) throws -> [CatalogInstanceInfo] {
        try agent.get("/v1/catalog/service/\(name)", as: [CatalogInstanceInfo].self)
    }

    /// The instance that answered a GET through the proxy (web.json's page names its host,
    /// which is the instance id).
    static func answerer(port: Int) throws -> String {
        let (status, body) = try UnixHTTP.request("GET", "/index.html", port: port)
        guard status == 200, let range = body.range(of: "Hello from ") else { throw TestFailure("answer \(status): \(body)") }
        return String(body[range.upperBound...].prefix { $0 != "<" && $0 != "\n" })
    }

    @Test func aHostModeCallerSpreadsOverPassingInstancesAndDrainsDeregisteredOnes() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let web = try String(contentsOfFile: DevAgent.repositoryRoot + "/manifests/web.json", encoding: .utf8)
            .replacingOccurrences(of: "\"discovery\": { \"tags\": [\"static\"] }", with: "\"discovery\": { \"tags\": [\"static\"], \"drainDelay\": \"10s\" }")
        #expect(web.contains("drainDelay"))
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "90s", input: web).status == 0, "\(agent.agentLog())")
        try agent.waitUntil("3 passing instances") { try Self.passing(agent, "web").count == 3 }
        let port = freeTCPPort()
        let manifest = Self.caller("caller", replicas: 2, upstreams: "[ { \"service\": \"web\", \"localPort\": \(port), \"strategy\": \"round-robin\" } ]")
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest).status == 0, "\(agent.agentLog())")
        // Two instances share the node's listener; each finds its address in the environment.
        let callers = try agent.get("/v1/instances?application=caller", as: [InstanceInfo].self)
        #expect(callers.count == 2 && callers.allSatisfy { $0.status == .running }, "\(callers)")
        for caller in callers {
            let pid = try #require(caller.mainPID)
            let environment = try String(contentsOfFile: "/proc/\(pid)/environ", encoding: .utf8)
            #expect(environment.split(separator: "\0").contains("UPSTREAM_WEB_ADDR=127.0.0.1:\(port)"))
        }

        // Round robin over the three passing instances: ten connections each.
        let registered = Set(try Self.passing(agent, "web").map(\.id))
        var counts: [String: Int] = [:]
        for _ in 0..<30 { counts[try Self.answerer(port: port), default: 0] += 1 }
        #expect(Set(counts.keys) == registered, "\(counts)")
        #expect(counts.values.allSatisfy { $0 == 10 }, "\(counts)")

        // Three connections open, one on each instance, their requests unfinished.
        let open = try (0..<3).map { _ in try PartialRequest(port: port) }
        usleep(200_000)
        #expect(try agent.deployctl("scale", "web", "2").status == 0)
        var gone = ""
        try agent.waitUntil("one instance to leave the catalog", timeout: 10) {
            let left = registered.subtracting(try Self.passing(agent, "web").map(\.id))
            gone = left.first ?? ""
            return !gone.isEmpty
        }
        // Deregistered before these connections began: none of them reaches it.
        var after: [String: Int] = [:]
        for _ in 0..<20 { after[try Self.answerer(port: port), default: 0] += 1 }
        #expect(after[gone] == nil, "\(after) after \(gone) left")
        #expect(after.count == 2, "\(after)")
        // Begun before: each is answered, the one on the deregistered instance too (drained).
        let answers = try open.map { try $0.finish() }
        #expect(answers.contains { $0.contains("Hello from \(gone)") }, "\(answers)")
        #expect(answers.allSatisfy { $0.contains("200 OK") }, "\(answers)")

        // No passing instance: a connection is closed at once, not left hanging.
        #expect(try agent.deployctl("delete", "web").status == 0)
        try agent.waitUntil("web to leave the catalog", timeout: 20) { try Self.passing(agent, "web").isEmpty }
        let began = Date()
        #expect(throws: (any Error).self) { try Self.answerer(port: port) }
        #expect(Date().timeIntervalSince(began) < 3)
    }

    /// Out of descriptors, an accept fails (EMFILE) while the connection waits in the backlog:
    /// the listener must back off, not retry at once and spin the forwarding thread, and must
    /// take the connection once descriptors are back.
    @Test func anAcceptFailingForWantOfDescriptorsBacksOffAndRecovers() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let port = freeTCPPort()
        let manifest = Self.caller("lonely", upstreams: "[ { \"service\": \"ghost\", \"localPort\": \(port) } ]")
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest).status == 0, "\(agent.agentLog())")
        let pid = try #require(agent.processIdentifier)
        // No instance of ghost: a connection is accepted and closed at once.
        try agent.waitUntil("the upstream listener to accept and close", timeout: 10) { try closedByPeer(port: port) }

        let limits = try prlimitNoFile(pid).split(separator: " ", omittingEmptySubsequences: true)
        let (soft, hard) = (try #require(limits.first), try #require(limits.last))
        // A soft limit of 0: every new descriptor of the agent's fails, open ones keep working.
        _ = try prlimitNoFile(pid, set: "0:\(hard)")
        let client = try connectLoopback(port: port)
        defer { close(client) }
        let before = cpuTicks(pid)
        usleep(1_000_000)
        let spent = cpuTicks(pid) - before
        _ = try prlimitNoFile(pid, set: "\(soft):\(hard)")
        // A spinning accept takes a whole core, about 100 ticks a second.
        #expect(spent < 30, "the agent spent \(spent) ticks in the second accepts failed")
        // Descriptors back: the waiting connection is accepted (and closed: still no instance).
        var byte: UInt8 = 0
        #expect(read(client, &byte, 1) == 0, "the connection waiting in the backlog was not served")
    }

    /// Out of descriptors after the accept, the proxy's connect to the instance fails at
    /// socket(2) with EMFILE: this host's condition, which must not count against the instance
    /// (here one failure would eject it), nor be retried on another.
    @Test func aConnectFailingForWantOfDescriptorsIsNotCountedAgainstTheInstance() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        // One instance without a health check: no probe takes descriptors while the limit is low.
        let backend = """
            { "name": "plain", "services": [ {
                "name": "plain", "rootfs": "\(Self.busybox)", "replicas": 1,
                "command": ["/bin/sh", "-c", "echo ok > /tmp/www/index.html && exec httpd -f -p $PORT_HTTP -h /tmp/www"],
                "mounts": [ { "type": "tmpfs", "target": "/tmp/www", "size": "1Mi" } ],
                "resources": { "cpu": 0.1, "memory": "16Mi" }, "network": { "ports": [ { "name": "http" } ] } } ] }
            """
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: backend).status == 0, "\(agent.agentLog())")
        let port = freeTCPPort()
        let caller = Self.caller("needy", upstreams: "[ { \"service\": \"plain\", \"localPort\": \(port), \"ejectAfter\": 1 } ]")
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: caller).status == 0, "\(agent.agentLog())")
        try agent.waitUntil("the proxy to reach the instance", timeout: 20) { (try? UnixHTTP.request("GET", "/index.html", port: port).status) == 200 }

        let pid = try #require(agent.processIdentifier)
        let limits = try prlimitNoFile(pid).split(separator: " ", omittingEmptySubsequences: true)
        let (soft, hard) = (try #require(limits.first), try #require(limits.last))
        // The limit bounds descriptor numbers, and a new descriptor takes the lowest free one:
        // a soft limit at the second free number leaves one, which the accept takes. Another
        // descriptor opened meanwhile makes the accept fail instead; then try again.
        var refusedForWant = false
        for _ in 0..<10 where !refusedForWant {
            let open = Set(try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").compactMap { Int($0) })
            let free = (0...).lazy.filter { !open.contains($0) }.prefix(2)
            _ = try prlimitNoFile(pid, set: "\(Array(free)[1]):\(hard)")
            let client = try connectLoopback(port: port)
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var byte: UInt8 = 0
            refusedForWant = read(client, &byte, 1) == 0
            _ = try prlimitNoFile(pid, set: "\(soft):\(hard)")
            close(client)
        }
        #expect(refusedForWant, "no connection was closed for want of a descriptor")
        #expect(!agent.agentLog().contains("upstream instance ejected"), "\(agent.agentLog())")
        #expect(try UnixHTTP.request("GET", "/index.html", port: port).status == 200)
    }

    @Test func aPrivateNetworkCallerFindsItsUpstreamBeforeItsFirstInstruction() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "manifests/web.json", "--timeout", "90s").status == 0, "\(agent.agentLog())")
        try agent.waitUntil("3 passing instances") { try Self.passing(agent, "web").count == 3 }
        // The caller's very first command goes through its local port, inside its own network
        // namespace: no retry, no wait.
        // Its first command (shell built-ins, no fork) copies its namespace's TCP sockets: the
        // listener on 127.0.0.1:9000 (0100007F:2328) must be among them.
        let manifest = Self.caller(
            "caller", mode: "private", replicas: 4, upstreams: "[ { \"service\": \"web\", \"localPort\": 9000 } ]",
            command: "while read -r line; do echo \"$line\"; done < /proc/net/tcp > /tmp/out/tcp; "
                + "wget -q -O /tmp/out/page http://$UPSTREAM_WEB_ADDR/index.html; echo $? > /tmp/out/status; exec sleep 100000")
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest).status == 0, "\(agent.agentLog())")
        let pids = try agent.get("/v1/instances?application=caller", as: [InstanceInfo].self).compactMap(\.mainPID)
        #expect(pids.count == 4)
        for pid in pids {
            try agent.waitUntil("the first request to finish", timeout: 20) { FileManager.default.fileExists(atPath: "/proc/\(pid)/root/tmp/out/status") }
            let sockets = try String(contentsOfFile: "/proc/\(pid)/root/tmp/out/tcp", encoding: .utf8)
            #expect(sockets.contains("0100007F:2328 00000000:0000 0A"), "listening before the first instruction: \(sockets)")
            let status = try String(contentsOfFile: "/proc/\(pid)/root/tmp/out/status", encoding: .utf8)
            let page = (try? String(contentsOfFile: "/proc/\(pid)/root/tmp/out/page", encoding: .utf8)) ?? ""
            #expect(status == "0\n", "wget's exit status")
            #expect(page.contains("Hello from "), "\(page)")
        }
        // Port 9000 of the node is not involved: the listener is the namespace's own.
        #expect(throws: (any Error).self) { try UnixHTTP.request("GET", "/index.html", port: 9000, timeoutSeconds: 2) }
    }

    /// A restarted agent adopts its running instances; their upstreams' listeners died with the
    /// old agent and are made again: inside a private namespace, and on the node.
    @Test func adoptedInstancesGetTheirUpstreamsBack() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "manifests/web.json", "--timeout", "90s").status == 0, "\(agent.agentLog())")
        try agent.waitUntil("3 passing instances") { try Self.passing(agent, "web").count == 3 }
        let port = freeTCPPort()
        let inside = Self.caller("inside", mode: "private", upstreams: "[ { \"service\": \"web\", \"localPort\": 9000 } ]")
        let outside = Self.caller("outside", upstreams: "[ { \"service\": \"web\", \"localPort\": \(port) } ]")
        for manifest in [inside, outside] {
            #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest).status == 0, "\(agent.agentLog())")
        }
        let pid = try #require(try agent.get("/v1/instances?application=inside", as: [InstanceInfo].self).first?.mainPID)
        /// A GET through the private instance's local port, from inside its namespace (the
        /// host's curl: busybox-static's wget crashes outside its own root).
        func insideAnswers() -> Bool {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
            process.arguments = ["--net=/proc/\(pid)/ns/net", "curl", "-s", "-m", "2", "http://127.0.0.1:9000/index.html"]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            guard (try? process.run()) != nil else { return false }
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return process.terminationStatus == 0 && text.contains("Hello from ")
        }
        #expect(insideAnswers())
        #expect(try Self.answerer(port: port).hasPrefix("web."))

        agent.kill9()
        #expect(!insideAnswers(), "the listeners went with the agent")
        try agent.start()
        try agent.waitUntil("the adopted instances' upstreams to answer again", timeout: 30) {
            insideAnswers() && (try? Self.answerer(port: port)) != nil
        }
        #expect(try agent.get("/v1/instances?application=inside", as: [InstanceInfo].self).first?.mainPID == pid, "adopted, not restarted")
    }

    @Test func anInstanceThatRefusesConnectionsIsRetriedAroundAndEjected() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let lock = "/tmp/flotilla-upstream-test-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: lock) }
        let refusing = try Self.deployFlaky(agent, lock: lock, mode: "host")
        let port = freeTCPPort()
        let manifest = Self.caller(
            "caller", upstreams: "[ { \"service\": \"flaky\", \"localPort\": \(port), \"strategy\": \"round-robin\", \"ejectAfter\": 2, \"ejectFor\": \"1m\" } ]")
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest).status == 0, "\(agent.agentLog())")

        // Every connection is answered: one refused by an instance is retried on another.
        var answered: [String: Int] = [:]
        for _ in 0..<12 { answered[try Self.answerer(port: port), default: 0] += 1 }
        #expect(answered.count == 2 && answered.values.reduce(0, +) == 12, "\(answered)")
        let log = agent.agentLog()
        let ejection = log.split(separator: "\n").first { $0.contains("upstream instance ejected") }
        #expect(ejection?.contains(refusing.id) == true, "\(ejection ?? "no ejection logged"): \(log.suffix(3000))")

        // Another service may not take over the node's local port for a different upstream.
        let intruder = Self.caller("intruder", upstreams: "[ { \"service\": \"web\", \"localPort\": \(port) } ]")
        _ = try agent.deployctl("apply", "-f", "-", "--timeout", "5s", input: intruder)
        try agent.waitUntil("the intruder's launch to fail with the reason", timeout: 20) {
            let (_, body) = try UnixHTTP.request("GET", "/v1/instances?application=intruder", socket: agent.socket)
            return body.contains("127.0.0.1:\(port) is a local port of service caller; give this upstream another localPort")
        }
        #expect(try agent.deployctl("delete", "intruder").status == 0)
    }

    /// A `private`-network instance is reached through its agent's published port, which
    /// accepts before it dials inside the namespace: an instance that listens on nothing there
    /// is a reset, which the caller sees and which ejects the instance.
    @Test func aPrivateInstanceThatRefusesBehindItsPublishedPortIsReportedAndEjected() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        let lock = "/tmp/flotilla-upstream-private-test-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: lock) }
        let refusing = try Self.deployFlaky(agent, lock: lock, mode: "private")
        // The published port itself, to a client that waits to be spoken to (a request sent
        // would make the kernel reset a close anyway): a reset, as a refused connection would
        // be, not an orderly end that reads as an empty answer.
        #expect(Self.outcome(port: refusing.port?.number ?? 0, sendingRequest: false) == "reset")

        let port = freeTCPPort()
        let manifest = Self.caller(
            "caller", upstreams: "[ { \"service\": \"flaky\", \"localPort\": \(port), \"strategy\": \"round-robin\", \"ejectAfter\": 2, \"ejectFor\": \"1m\" } ]")
        #expect(try agent.deployctl("apply", "-f", "-", "--timeout", "60s", input: manifest).status == 0, "\(agent.agentLog())")
        // Until it is ejected (two resets in a row), a connection to it is reset, as the
        // instance's was; after, every connection is answered by the other two.
        let outcomes = (0..<12).map { _ in Self.outcome(port: port) }
        #expect(outcomes.filter { $0 == "reset" }.count == 2 && outcomes.filter { $0.hasPrefix("answered") }.count == 10, "\(outcomes)")
        #expect(outcomes.suffix(6).allSatisfy { $0.hasPrefix("answered") }, "\(outcomes)")
        let log = agent.agentLog()
        let ejection = log.split(separator: "\n").first { $0.contains("upstream instance ejected") }
        #expect(ejection?.contains(refusing.id) == true, "\(ejection ?? "no ejection logged"): \(log.suffix(3000))")
        #expect(ejection?.contains("failed before its first byte") == true)
    }

    /// What a GET of /index.html on 127.0.0.1:`port` met: "answered by <instance>", "reset"
    /// (ECONNRESET), "closed" (an end without an answer), or another failure. Without
    /// `sendingRequest`, what a connection that sends nothing meets.
    static func outcome(port: Int, sendingRequest: Bool = true) -> String {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return errno == ECONNREFUSED ? "refused" : "connect errno \(errno)" }
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let request = Array("GET /index.html HTTP/1.0\r\nHost: flaky\r\n\r\n".utf8)
        guard !sendingRequest || send(descriptor, request, request.count, Int32(MSG_NOSIGNAL)) == request.count else {
            return errno == ECONNRESET || errno == EPIPE ? "reset" : "send errno \(errno)"
        }
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count < 0 { return errno == ECONNRESET ? "reset" : "recv errno \(errno)" }
            if count == 0 { break }
            answer += buffer[..<count]
        }
        let text = String(decoding: answer, as: UTF8.self)
        guard let range = text.range(of: "Hello from ") else { return text.isEmpty ? "closed" : "other: \(text.prefix(100))" }
        return "answered by " + String(text[range.upperBound...].prefix { $0 != "<" && $0 != "\n" })
    }
}

/// A TCP connection to the proxy with an HTTP request sent all but its final empty line.
private final class PartialRequest {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(descriptor)
            throw TestFailure("connect 127.0.0.1:\(port): errno \(errno)")
        }
        try send("GET /index.html HTTP/1.0\r\nHost: web\r\n")
    }

    deinit { close(descriptor) }

    private func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard Glibc.send(descriptor, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else { throw TestFailure("send: errno \(errno)") }
    }

    /// Ends the request and reads the whole answer.
    func finish() throws -> String {
        try send("\r\n")
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var answer: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = recv(descriptor, &buffer, buffer.count, 0)
            if count <= 0 { break }
            answer += buffer[..<count]
        }
        return String(decoding: answer, as: UTF8.self)
    }
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
private func freeTCPPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// A blocking connection to 127.0.0.1:`port` with a 10 s receive timeout.
private func connectLoopback(port: Int) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard fd >= 0, rc == 0 else {
        close(fd)
        throw TestFailure("connect 127.0.0.1:\(port): errno \(errno)")
    }
    return fd
}

/// Whether a connection to `port` is accepted and then closed by the other side.
private func closedByPeer(port: Int) throws -> Bool {
    guard let fd = try? connectLoopback(port: port) else { return false }
    defer { close(fd) }
    var byte: UInt8 = 0
    return read(fd, &byte, 1) == 0
}

/// User and system CPU time of process `pid` in clock ticks (fields 14 and 15 of its stat).
private func cpuTicks(_ pid: pid_t) -> Int {
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return 0 }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    return (Int(fields[11]) ?? 0) + (Int(fields[12]) ?? 0)
}

/// `prlimit --pid PID --nofile` (util-linux): the soft and hard limits, or sets them to `set`
/// ("SOFT:HARD").
private func prlimitNoFile(_ pid: pid_t, set: String? = nil) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/prlimit")
    process.arguments = ["--pid", "\(pid)"] + (set.map { ["--nofile=\($0)"] } ?? ["--nofile", "--raw", "--noheadings", "--output", "SOFT,HARD"])
    let output = Pipe()
    process.standardOutput = output
    try process.run()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    guard process.terminationStatus == 0 else { throw TestFailure("prlimit \(process.arguments ?? []): status \(process.terminationStatus)") }
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
}
