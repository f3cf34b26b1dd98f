import Foundation
import Glibc

/// The output of a command run to completion.
public struct CommandOutput: Sendable, Equatable {
    /// The exit status, or 128 + the signal number when a signal ended it.
    public var status: Int32
    public var stdout: String
    public var stderr: String
}

/// Running `ip`, `tc` and one-shot commands with Foundation `Process`, to completion, with a
/// time limit. Output goes to temporary files rather than pipes, so a command that writes a lot
/// can never block on a full pipe while we wait for it.
enum Command {
    /// `name` resolved on PATH (and in /usr/sbin and /sbin, where `ip` lives but a test's PATH
    /// may not reach).
    static func executable(named name: String) throws -> String {
        if name.contains("/") { return name }
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") + ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw HostNetworkError.programNotFound(name)
    }

    /// Runs `arguments` (the first one is looked up on PATH) and returns its output whatever its
    /// status; throws only if it cannot be launched or outlives `timeout` (then its process group
    /// is killed).
    static func run(_ arguments: [String], environment: [String: String] = [:],
                    timeout: Duration = .seconds(10)) throws -> CommandOutput
    {
        guard let name = arguments.first else { throw HostNetworkError.programNotFound("(empty command)") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try executable(named: name))
        process.arguments = Array(arguments.dropFirst())
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        let base = NSTemporaryDirectory() + "flotilla-netns-\(UUID().uuidString)"
        let outPath = base + ".out", errPath = base + ".err"
        defer {
            unlink(outPath)
            unlink(errPath)
        }
        guard FileManager.default.createFile(atPath: outPath, contents: nil),
              FileManager.default.createFile(atPath: errPath, contents: nil),
              let out = FileHandle(forWritingAtPath: outPath), let err = FileHandle(forWritingAtPath: errPath)
        else {
            throw HostNetworkError.commandFailed(command: arguments, status: -1, stderr: "cannot create \(base).out/.err")
        }
        defer {
            try? out.close()
            try? err.close()
        }
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = out
        process.standardError = err
        do {
            try process.run()
        } catch {
            throw HostNetworkError.commandFailed(command: arguments, status: -1, stderr: "\(error)")
        }
        // Foundation puts the child in a process group of its own (pgid = pid), so a timeout
        // kills whatever it forked too.
        if !waitForExit(process, timeout: timeout) {
            kill(-process.processIdentifier, SIGKILL)
            _ = waitForExit(process, timeout: .seconds(2))
            throw HostNetworkError.commandTimedOut(command: arguments, timeout: timeout)
        }
        // Ended; whatever it left in its group goes too, which also lets Foundation see the end
        // (see `hasEnded`) and record the status.
        kill(-process.processIdentifier, SIGKILL)
        let deadline = ContinuousClock.now + .seconds(2)
        while process.isRunning && ContinuousClock.now < deadline { usleep(5_000) }
        guard !process.isRunning else {
            throw HostNetworkError.commandFailed(
                command: arguments, status: -1, stderr: "it ended, but a process it left outside its group keeps it from being reaped")
        }
        let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
        return CommandOutput(
            status: status,
            stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
            stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
    }

    /// Runs `arguments` and returns its stdout; a non-zero status throws `commandFailed` with the
    /// command line and its stderr.
    @discardableResult
    static func check(_ arguments: [String], timeout: Duration = .seconds(10)) throws -> String {
        let output = try run(arguments, timeout: timeout)
        guard output.status == 0 else {
            throw HostNetworkError.commandFailed(command: arguments, status: output.status, stderr: output.stderr)
        }
        return output.stdout
    }

    /// Whether `process` ended within `timeout` (polled: Foundation's wait has no time limit).
    static func waitForExit(_ process: Process, timeout: Duration) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !hasEnded(process) {
            if ContinuousClock.now >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    /// Whether `process` has ended. Not `!isRunning` alone: swift-corelibs-foundation learns of
    /// the exit from a socket the child inherits, so while anything the child forked still holds
    /// it, Foundation neither reaps the child nor calls it ended (and `waitUntilExit` blocks for as
    /// long). /proc decides instead: a zombie has ended.
    static func hasEnded(_ process: Process) -> Bool {
        !process.isRunning || !ProcessTable.isAlive(process.processIdentifier, startTime: nil)
    }
}

/// Facts about processes, from /proc.
enum ProcessTable {
    /// The start time of `pid` in clock ticks since boot (/proc/PID/stat field 22), which with
    /// the pid names one process even after the pid is reused; nil if there is no such process.
    static func startTime(of pid: pid_t) -> UInt64? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")")
        else { return nil }
        // After "pid (comm)" come fields 3, 4, …; the start time is field 22.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 19 ? UInt64(fields[19]) : nil
    }

    /// Whether `pid` still names the process that started at `startTime` (and is not a zombie
    /// waiting to be reaped).
    static func isAlive(_ pid: pid_t, startTime: UInt64?) -> Bool {
        guard pid > 0, let actual = self.startTime(of: pid) else { return false }
        if let state = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
           let close = state.lastIndex(of: ")"),
           state[state.index(after: close)...].split(separator: " ").first == "Z"
        {
            return false
        }
        return startTime == nil || startTime == actual
    }
}
