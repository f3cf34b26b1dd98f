import AgentAPI
import Foundation
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

private let isRoot = getuid() == 0

/// The agent's DNS server over its real catalog, asked with Debian's `dig`.
@Suite(.dedicatedThread, .serialized, .enabled(if: isRoot, "needs root: agentd launches services in namespaces and cgroups"), .timeLimit(.minutes(10)))
struct DNSAgentTests {
    /// `dig +short` at the agent's DNS port; one answer per line.
    static func dig(_ agent: DevAgent, _ name: String, _ type: String, _ options: String...) throws -> [String] {
        let port = try agent.dnsPort()
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/dig")
        process.arguments = ["@127.0.0.1", "-p", String(port), name, type, "+short", "+norec", "+time=2", "+tries=1"] + options
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else { throw TestFailure("dig \(name) \(type): \(text)") }
        return text.split(separator: "\n").map(String.init)
    }

    @Test func servicesAndNodesResolveAndFollowTheCatalog() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "manifests/web.json", "--timeout", "90s").status == 0, "\(agent.agentLog())")
        let ports = try agent.get("/v1/instances?application=web", as: [InstanceInfo].self).filter { $0.desired == .run }
            .compactMap { $0.ports.first?.number }
        #expect(ports.count == 3)
        // SRV: priority weight port target, the target resolving in the additional section.
        try agent.waitUntil("3 SRV records", timeout: 10) { try Self.dig(agent, "web.service.flotilla", "SRV").count == 3 }
        let srv = try Self.dig(agent, "web.service.flotilla", "SRV")
        #expect(Set(srv.compactMap { $0.split(separator: " ").dropFirst(2).first.flatMap { Int($0) } }) == Set(ports), "\(srv)")
        #expect(srv.allSatisfy { $0.hasSuffix(" \(agent.nodeName).node.flotilla.") }, "\(srv)")
        #expect(try Self.dig(agent, "_http._tcp.web.service.flotilla", "SRV").count == 3)
        #expect(try Self.dig(agent, "static.web.service.flotilla", "A") == ["127.0.0.1"], "the tag; three instances, one node address")
        #expect(try Self.dig(agent, "\(agent.nodeName).node.flotilla", "A") == ["127.0.0.1"])
        #expect(try Self.dig(agent, "other.web.service.flotilla", "A").isEmpty)
        let additional = try Self.dig(agent, "web.service.flotilla", "SRV", "+noshort", "+noall", "+additional")
        #expect(additional.contains { $0.hasPrefix("\(agent.nodeName).node.flotilla.") && $0.hasSuffix("127.0.0.1") }, "\(additional)")

        // A scale-down leaves DNS as it leaves the catalog: before the instance is stopped.
        #expect(try agent.deployctl("scale", "web", "1").status == 0)
        try agent.waitUntil("1 SRV record", timeout: 10) { try Self.dig(agent, "web.service.flotilla", "SRV").count == 1 }
        #expect(try agent.deployctl("delete", "web").status == 0)
        try agent.waitUntil("no SRV record", timeout: 10) { try Self.dig(agent, "web.service.flotilla", "SRV").isEmpty }
        let status = try Self.dig(agent, "web.service.flotilla", "A", "+noshort", "+noall", "+comments")
        #expect(status.contains { $0.contains("status: NXDOMAIN") }, "\(status)")
    }

    /// docs/discovery.md's recipe: dnsmasq forwards the domain to the agent and answers the
    /// rest itself (here: refuses, having no upstream), so a host resolver sees the services.
    @Test func dnsmasqForwardsTheDomainAsDocumented() throws {
        let agent = try DevAgent()
        defer { agent.shutdown() }
        #expect(try agent.deployctl("apply", "-f", "manifests/web.json", "--timeout", "90s").status == 0, "\(agent.agentLog())")
        let recipe = try String(contentsOfFile: DevAgent.repositoryRoot + "/docs/discovery.md", encoding: .utf8)
        #expect(recipe.contains("server=/flotilla/127.0.0.1#8600"))
        let port = Int.random(in: 20_000...29_999)
        // Started as the daemon it usually is (it forks and its first process exits), and
        // killed by its pid file: a long-running child of the test would hang Foundation's
        // waitUntilExit of the dig processes started meanwhile.
        let pidFile = agent.stateDirectory + "/dnsmasq.pid"
        let dnsmasq = Process()
        dnsmasq.executableURL = URL(fileURLWithPath: "/usr/sbin/dnsmasq")
        dnsmasq.arguments = [
            "--no-resolv", "--no-hosts", "--listen-address=127.0.0.1", "--bind-interfaces", "--port=\(port)",
            "--server=/flotilla/127.0.0.1#\(try agent.dnsPort())", "--cache-size=0", "--pid-file=\(pidFile)",
        ]
        try dnsmasq.run()
        dnsmasq.waitUntilExit()
        #expect(dnsmasq.terminationStatus == 0)
        defer {
            if let pid = (try? String(contentsOfFile: pidFile, encoding: .utf8)).flatMap({ pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }) {
                kill(pid, SIGKILL)
            }
        }
        var answers: [String] = []
        try agent.waitUntil("dnsmasq to forward web.service.flotilla", timeout: 15) {
            let output = Pipe()
            let dig = Process()
            dig.executableURL = URL(fileURLWithPath: "/usr/bin/dig")
            dig.arguments = ["@127.0.0.1", "-p", String(port), "web.service.flotilla", "SRV", "+short", "+time=1", "+tries=1"]
            dig.standardOutput = output
            try dig.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            dig.waitUntilExit()
            answers = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
            return answers.count == 3
        }
        #expect(answers.allSatisfy { $0.hasSuffix("\(agent.nodeName).node.flotilla.") }, "\(answers)")
    }

    @Test func aTakenPortOrABadFlagStopsTheAgentWithTheReason() throws {
        let first = try DevAgent()
        defer { first.shutdown() }
        let port = try first.dnsPort()
        let cases: [([String], String)] = [
            (["--dns-addr", "127.0.0.1:\(port)"], "DNS on 127.0.0.1:\(port)"),
            (["--dns-addr", "localhost"], "--dns-addr localhost: write HOST:PORT"),
            (["--dns-domain", "bad_domain"], "--dns-domain bad_domain: write DNS labels"),
            (["--dns-ttl", "5 seconds"], "--dns-ttl 5 seconds"),
        ]
        for (arguments, message) in cases {
            let agent = try DevAgent(extraArguments: arguments, waits: false)
            defer { agent.shutdown() }
            try agent.waitUntil("agentd to exit", timeout: 20) { agent.process?.isRunning == false }
            #expect(agent.agentLog().contains(message), "\(arguments): \(agent.agentLog())")
        }
    }
}

extension DevAgent {
    /// The port its DNS server bound (it is started with `--dns-addr 127.0.0.1:0`), from its log.
    func dnsPort() throws -> Int {
        let pattern = try Regex("address=127\\.0\\.0\\.1:([0-9]+) .*serving DNS")
        let log = (try? String(contentsOfFile: stateDirectory + "/agentd.log", encoding: .utf8)) ?? ""
        for line in log.split(separator: "\n") {
            if let match = line.firstMatch(of: pattern), let port = match.output[1].substring.flatMap({ Int($0) }) { return port }
        }
        throw TestFailure("no DNS port in the agent's log: \(agentLog())")
    }
}
