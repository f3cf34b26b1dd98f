import AgentAPI
import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real `agentd --dev` in a private state directory, with its own API socket, cgroup parent
/// and port range, driven through the real `deployctl`. `shutdown()` removes everything it made:
/// processes, cgroups, mounts under its state directory, and the directory.
final class DevAgent: @unchecked Sendable {
    let stateDirectory: String
    let socket: String
    let cgroupParent: String
    let portRange: ClosedRange<Int>
    let extraArguments: [String]
    let nodeName: String
    /// `--dev` (a one-node cluster); false for a server of a cluster (`extraArguments` then
    /// say `--bootstrap` or `--join`).
    let dev: Bool
    private(set) var process: Process?
    private var logHandle: FileHandle?

    static var binDirectory: URL {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }

    static var repositoryRoot: String {
        var path = #filePath
        for _ in 0..<3 { path = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)]) }
        return path
    }

    /// Starts agentd; unless `waits` is false, also waits until its API answers.
    init(nodeName: String = "e2e", dev: Bool = true, extraArguments: [String] = [], waits: Bool = true) throws {
        self.extraArguments = extraArguments
        self.nodeName = nodeName
        self.dev = dev
        let id = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        stateDirectory = "/tmp/flotilla-e2e-\(id)"
        socket = stateDirectory + "/api/api.sock"
        cgroupParent = "flotilla-e2e-\(id)"
        // One of 24 ranges of 500 ports, so that agents running side by side rarely share one,
        // all below the kernel's ephemeral ports (32768-60999), which outgoing connections hold.
        let low = Int.random(in: 40...63) * 500
        portRange = low...(low + 499)
        try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
        do {
            if waits { try start() } else { try startWithoutWaiting() }
        } catch {
            shutdown()
            throw error
        }
    }

    /// Starts agentd and waits until its API answers.
    func start() throws {
        try startWithoutWaiting()
        try waitUntilAnswering()
    }

    /// Waits until the API of the agent started answers and lists this node.
    func waitUntilAnswering(timeout: TimeInterval = 30) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? deployctl("version").output.contains("agentd ")) == true, try deployctl("nodes").output.contains(nodeName) { return }
            guard process?.isRunning == true else { throw TestFailure("agentd exited: \(agentLog())") }
            usleep(100_000)
        }
        throw TestFailure("agentd did not answer within \(Int(timeout)) s: \(agentLog())")
    }

    /// Starts agentd (a client whose servers are all gone answers no API call).
    func startWithoutWaiting() throws {
        let process = Process()
        process.executableURL = Self.binDirectory.appendingPathComponent("agentd")
        process.arguments = (dev ? ["--dev"] : []) + [
            "--state-dir", stateDirectory + "/state", "--api-socket", socket, "--cgroup-parent", cgroupParent,
            "--port-range", "\(portRange.lowerBound)-\(portRange.upperBound)", "--node-name", nodeName, "--log-level", "info",
            // Agents of parallel tests share the host: each lets the kernel pick its DNS port.
            "--dns-addr", "127.0.0.1:0",
        ] + extraArguments
        _ = FileManager.default.createFile(atPath: stateDirectory + "/agentd.log", contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: stateDirectory + "/agentd.log"))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        logHandle = log
    }

    /// Whether the agent runs (its pid is its own, not yet reaped and free for another process).
    var isRunning: Bool { process?.isRunning == true }

    /// The agent's pid while it runs.
    var processIdentifier: pid_t? { process.map { $0.processIdentifier } }

    func agentLog() -> String {
        (try? String(contentsOfFile: stateDirectory + "/agentd.log", encoding: .utf8)).map { String($0.suffix(4000)) } ?? ""
    }

    /// SIGKILL: no graceful anything.
    func kill9() {
        signalAndWait(SIGKILL)
    }

    /// SIGTERM and wait: the graceful path.
    func terminate() {
        signalAndWait(SIGTERM)
    }

    /// Signals the agent unless it has ended (agents of some tests exit by themselves): once
    /// Foundation has reaped it, its pid may be another process's, another test's agent's.
    private func signalAndWait(_ signal: Int32) {
        guard let process else { return }
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        self.process = nil
    }

    /// Runs deployctl against this agent.
    @discardableResult
    func deployctl(_ arguments: String..., input: String? = nil) throws -> (status: Int32, output: String, error: String) {
        try runDeployctl(Array(arguments), input: input)
    }

    func runDeployctl(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = Self.binDirectory.appendingPathComponent("deployctl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: Self.repositoryRoot)
        var environment = ProcessInfo.processInfo.environment
        environment["FLOTILLA_ADDR"] = socket
        environment["NO_COLOR"] = "1"
        process.environment = environment
        let output = Pipe()
        let error = Pipe()
        let inputPipe = Pipe()
        process.standardOutput = output
        process.standardError = error
        process.standardInput = inputPipe
        try process.run()
        if let input { inputPipe.fileHandleForWriting.write(Data(input.utf8)) }
        try inputPipe.fileHandleForWriting.close()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
    }

    /// Runs a deployctl command that goes on (`--follow`) against this agent until its output
    /// holds `expected` (after `then` ran, once it started) or `timeout` passes; stops it and
    /// answers what it printed.
    func following(_ arguments: [String], until expected: String, timeout: TimeInterval = 20, then action: () throws -> Void = {}) throws -> String {
        try withoutActuallyEscaping(action) { action in
            try following(arguments, steps: [(waitFor: "", then: { usleep(500_000); try action() })], until: expected, timeout: timeout)
        }
    }

    /// `following` in steps: each step's action runs once the output holds its `waitFor`, so a
    /// watcher has shown one state before the next is made (a watch answers the state it finds,
    /// and changes made faster than it asks are seen as their last).
    func following(
        _ arguments: [String], steps: [(waitFor: String, then: () throws -> Void)], until expected: String, timeout: TimeInterval = 20
    ) throws -> String {
        let outputPath = stateDirectory + "/following-\(UInt32.random(in: 0...UInt32.max)).out"
        _ = FileManager.default.createFile(atPath: outputPath, contents: nil)
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath))
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = Self.binDirectory.appendingPathComponent("deployctl")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["FLOTILLA_ADDR"] = socket
        environment["NO_COLOR"] = "1"
        process.environment = environment
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        defer {
            if process.isRunning { process.terminate() }
            process.waitUntilExit()
        }
        let deadline = Date().addingTimeInterval(timeout)
        func printed(_ text: String) throws -> String {
            var output = ""
            while Date() < deadline {
                output = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
                if text.isEmpty || output.contains(text) { return output }
                guard process.isRunning else { break }
                usleep(100_000)
            }
            throw TestFailure(
                "deployctl \(arguments.joined(separator: " ")) did not print \"\(text)\" within \(Int(timeout)) s; it printed:\n\(output)\nagentd log:\n\(agentLog())")
        }
        for step in steps {
            _ = try printed(step.waitFor)
            try step.then()
        }
        return try printed(expected)
    }

    /// A JSON answer of the API, through deployctl's `-o json` where it has one, else curl-free:
    /// over the socket with a tiny HTTP/1.0 request.
    func get<Answer: Decodable>(_ path: String, as type: Answer.Type) throws -> Answer {
        let (status, body) = try UnixHTTP.request("GET", path, socket: socket)
        guard status == 200 else { throw TestFailure("GET \(path) answered \(status): \(body)") }
        return try JSONDecoder().decode(type, from: Data(body.utf8))
    }

    /// Polls until `condition` holds, or fails the test after `timeout`.
    func waitUntil(_ description: String, timeout: TimeInterval = 60, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var lastError: (any Error)?
        while Date() < deadline {
            do {
                if try condition() { return }
            } catch {
                lastError = error
            }
            usleep(200_000)
        }
        throw TestFailure("timed out waiting for \(description)\(lastError.map { " (last error: \($0))" } ?? "")\nagentd log:\n\(agentLog())")
    }

    /// Stops the agent, then removes every process, cgroup and mount it or its services left.
    func shutdown() {
        terminate()
        CgroupCleanup.killAndRemove(parent: cgroupParent)
        Mounts.unmountAll(under: stateDirectory)
        try? FileManager.default.removeItem(atPath: stateDirectory)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
