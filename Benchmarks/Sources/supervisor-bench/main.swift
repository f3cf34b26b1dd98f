import Foundation
import Glibc

// supervisor-bench [restart|logs|idle|all]: the figures of the supervisor's second part.
// Needs root (namespaces, cgroups). Build and run in release:
//   swift run -c release --package-path Benchmarks supervisor-bench all
guard getuid() == 0 else {
    FileHandle.standardError.write(Data("supervisor-bench: run as root (namespaces and cgroups)\n".utf8))
    exit(2)
}
let which = CommandLine.arguments.dropFirst().first ?? "all"
let rootfs = try BenchRootfs()
// Globals are never deinitialised: remove the rootfs explicitly at the end.
defer { rootfs.remove() }
if which == "restart" || which == "all" {
    try await RestartLatency.run(rootfs: rootfs, cycles: 200)
}
if which == "logs" || which == "all" {
    try await LogThroughput.run(rootfs: rootfs, megabytes: 100, services: 100, megabytesEach: 5)
}
if which == "idle" || which == "all" {
    let count = Int(ProcessInfo.processInfo.environment["INSTANCES"] ?? "") ?? 1000
    try await IdleHealthChecks.run(rootfs: rootfs, instances: count, measure: .seconds(60))
}
