import Foundation

/// What went wrong in a `HostNetwork`: bad input names the value and the limit it broke; a failed
/// `ip`/`tc` call names the whole command line, its exit status and its stderr.
public enum HostNetworkError: Error, Equatable, CustomStringConvertible {
    /// `HostNetwork(hostCount:)` with a count outside `1...HostNetwork.maximumHostCount`.
    case hostCountOutOfRange(requested: Int, allowed: ClosedRange<Int>)
    /// A host number outside the network's `hosts`.
    case hostOutOfRange(host: Int, hosts: ClosedRange<Int>)
    /// `impair` with a negative delay or a loss outside 0...1.
    case invalidImpairment(String)
    /// `start` on a host whose process still runs.
    case alreadyRunning(host: Int, pid: pid_t)
    /// `restart` on a host where nothing was ever started.
    case nothingStarted(host: Int)
    /// The network was shut down; it can be used no more.
    case shutDown(runID: String)
    /// The harness needs root (network namespaces), and this process is not.
    case notRoot
    /// A program the harness runs was not found on PATH.
    case programNotFound(String)
    /// A command exited with a non-zero status (or could not be launched: status -1).
    case commandFailed(command: [String], status: Int32, stderr: String)
    /// A command ran past its time limit and was killed.
    case commandTimedOut(command: [String], timeout: Duration)
    /// A file under the run's record directory could not be written or removed.
    case recordFailed(path: String, reason: String)
    /// The relay that delays and drops a host's frames did not report ready; its log says why.
    case relayDidNotStart(host: Int, log: String)
    /// `shutdown` could not remove everything; each entry names what is left and why.
    case cleanupIncomplete([String])

    public var description: String {
        switch self {
        case .hostCountOutOfRange(let requested, let allowed):
            "host count \(requested) is out of range: a HostNetwork has \(allowed.lowerBound) to \(allowed.upperBound) hosts"
        case .hostOutOfRange(let host, let hosts):
            "host \(host) is out of range: this network's hosts are \(hosts.lowerBound)...\(hosts.upperBound)"
        case .invalidImpairment(let reason):
            "invalid impairment: \(reason)"
        case .alreadyRunning(let host, let pid):
            "host \(host) already runs pid \(pid): stop or kill9 it first"
        case .nothingStarted(host: let host):
            "host \(host) has nothing to restart: start a process on it first"
        case .shutDown(let runID):
            "network flt\(runID) is shut down"
        case .notRoot:
            "the multi-host harness needs root (network namespaces, veth, bridge)"
        case .programNotFound(let name):
            "\(name) not found on PATH"
        case .commandFailed(let command, let status, let stderr):
            "`\(command.joined(separator: " "))` exited with status \(status): \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
        case .commandTimedOut(let command, let timeout):
            "`\(command.joined(separator: " "))` did not finish within \(timeout); killed"
        case .recordFailed(let path, let reason):
            "record \(path): \(reason)"
        case .relayDidNotStart(let host, let log):
            "the impairment relay for host \(host) did not start: \(log)"
        case .cleanupIncomplete(let problems):
            "cleanup incomplete: \(problems.joined(separator: "; "))"
        }
    }
}
