import Foundation
import NetnsHarness
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// A client sending requests one after another from inside a host's network namespace until it
/// is stopped: a shell loop whose every output line is one request, `ok <body>` or
/// `fail <where> <why>`. Real clients (curl, dig) rather than our own code, so that what they
/// see is what a user's would.
final class RequestLoop {
    let name: String
    private let process: Process
    private let outputPath: String
    private let stopPath: String

    /// Requests through the agent's local proxy on 127.0.0.1:`port`.
    static func throughProxy(_ network: HostNetwork, host: Int, port: Int, path: String, directory: String) throws -> RequestLoop {
        try RequestLoop(
            network, host: host, name: "proxy", directory: directory,
            script: """
                while [ ! -e "$1" ]; do
                  if body=$(curl -fsS --max-time 5 http://127.0.0.1:\(port)\(path) 2>&1); then echo "ok $body"; else echo "fail proxy $(date +%T.%N) $body"; fi
                done
                """)
    }

    /// Requests to an instance found anew for each one in the agent's DNS (127.0.0.1:8600):
    /// one of the SRV records of `service` at random, its target's address, then the request.
    static func throughDNS(_ network: HostNetwork, host: Int, service: String, path: String, directory: String) throws -> RequestLoop {
        try RequestLoop(
            network, host: host, name: "dns", directory: directory,
            script: """
                while [ ! -e "$1" ]; do
                  set -- "$1" $(dig @127.0.0.1 -p 8600 +short +time=1 +tries=1 SRV \(service).service.flotilla | shuf -n 1)
                  if [ -z "$5" ]; then echo "fail dns no SRV record"; continue; fi
                  address=$(dig @127.0.0.1 -p 8600 +short +time=1 +tries=1 A "$5" | head -n 1)
                  if [ -z "$address" ]; then echo "fail dns no address for $5"; continue; fi
                  if body=$(curl -fsS --max-time 5 "http://$address:$4\(path)" 2>&1); then echo "ok $body"; else echo "fail $address:$4 $(date +%T.%N) $body"; fi
                done
                """)
    }

    private init(_ network: HostNetwork, host: Int, name: String, directory: String, script: String) throws {
        self.name = name
        outputPath = directory + "/\(name)-requests.txt"
        stopPath = directory + "/\(name)-requests.stop"
        try? FileManager.default.removeItem(atPath: stopPath)
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["--net=/run/netns/" + (try network.namespace(of: host)), "--", "/bin/sh", "-c", script, "sh", stopPath]
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    /// The requests so far, one line each.
    var lines: [String] {
        ((try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    var succeeded: Int { lines.filter { $0.hasPrefix("ok ") }.count }

    /// Waits for `count` more successful requests than now.
    func waitForSuccesses(_ count: Int, timeout: TimeInterval = 30) throws {
        let target = succeeded + count
        try NetnsClusterTests.waitUntil("\(count) more requests through \(name) to succeed (\(lines.suffix(3)))", timeout: timeout) {
            succeeded >= target
        }
    }

    /// Ends the loop after its request in flight (killed if it takes longer than 10 s) and
    /// returns every request's line.
    @discardableResult
    func stop() -> [String] {
        _ = FileManager.default.createFile(atPath: stopPath, contents: nil)
        let deadline = Date().addingTimeInterval(10)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        return lines
    }
}
