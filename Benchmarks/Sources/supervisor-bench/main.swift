import Foundation
import Glibc

// supervisor-bench [restart|logs|idle|all] [--journal off|on|both]: the figures of the
// supervisor's second part. Needs root (namespaces, cgroups). Build and run in release:
//   swift run -c release --package-path Benchmarks supervisor-bench all
// Forwarding to journald is on by default wherever journald runs, so `both` (the default) takes
// every figure with forwarding off, then on: against the host's journald if one runs, else
// against a private one (PrivateJournald), else it says why the second half was skipped.
guard getuid() == 0 else {
    FileHandle.standardError.write(Data("supervisor-bench: run as root (namespaces and cgroups)\n".utf8))
    exit(2)
}
let arguments = Array(CommandLine.arguments.dropFirst())
let which = arguments.first { !$0.hasPrefix("--") } ?? "all"
let journal = arguments.firstIndex(of: "--journal").flatMap { arguments.indices.contains($0 + 1) ? arguments[$0 + 1] : nil } ?? "both"

func measure(_ forwarding: Forwarding) async throws {
    let rootfs = try BenchRootfs()
    // Globals are never deinitialised: remove the rootfs explicitly at the end.
    defer { rootfs.remove() }
    if which == "restart" || which == "all" {
        try await RestartLatency.run(rootfs: rootfs, cycles: 200, forwarding: forwarding)
    }
    if which == "logs" || which == "all" {
        try await LogThroughput.run(rootfs: rootfs, volume: forwarding == .on ? .forwarded : .full, forwarding: forwarding)
    }
    if which == "idle" || which == "all" {
        let count = Int(ProcessInfo.processInfo.environment["INSTANCES"] ?? "") ?? 1000
        try await IdleHealthChecks.run(rootfs: rootfs, instances: count, measure: .seconds(60), forwarding: forwarding)
    }
}

/// The figures with forwarding on: to the host's journald if one listens (as inside the private
/// run), else to a private one in a new run of this executable, else skipped with the reason.
func measureForwardingOn() async throws {
    if PrivateJournald.hostJournaldListens {
        try await measure(.on)
    } else if let reason = PrivateJournald.unavailableReason {
        print("\n== journald forwarding on: SKIPPED. No journald runs on this host, and a private one cannot be started: \(reason)")
    } else {
        print("\n(no journald runs on this host: forwarding on, to a private journald in a mount namespace of this benchmark)")
        let status = try PrivateJournald.run(arguments: [which, "--journal", "on"], countingLinesOf: "bench")
        guard status == 0 else { throw BenchFailure("the forwarding-on run ended with wait status \(status)") }
    }
}

switch journal {
case "off":
    try await measure(.off)
case "on":
    try await measureForwardingOn()
case "both":
    try await measure(.off)
    try await measureForwardingOn()
default:
    FileHandle.standardError.write(Data("supervisor-bench: --journal takes off, on or both\n".utf8))
    exit(2)
}
