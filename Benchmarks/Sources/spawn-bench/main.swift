import Foundation
import Glibc

// spawn-bench [--rounds N] [--warmup N] [--services N] [--idle-seconds N] [--skip-density] [--density-only]
// The density figure runs in a fresh process of this executable (`--density-only`) after the
// start latency rounds, so that the heap they grew is not in its baseline.
let arguments = Array(CommandLine.arguments.dropFirst())
func option(_ name: String, default value: Int, in arguments: [String]) -> Int {
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let number = Int(arguments[index + 1])
    else { return value }
    return number
}
let rounds = option("--rounds", default: 300, in: arguments)
let warmup = option("--warmup", default: 20, in: arguments)
let services = option("--services", default: 1000, in: arguments)
let idleSeconds = option("--idle-seconds", default: 10, in: arguments)
let skipDensity = arguments.contains("--skip-density")
let densityOnly = arguments.contains("--density-only")

guard getuid() == 0 else {
    print("spawn-bench needs root (namespaces, cgroups, crun)")
    exit(2)
}

/// Runs `--density-only` in a new process of this executable and waits for it.
func runDensityInFreshProcess() throws {
    fflush(nil)
    let executable = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
    let status = spawnAndWait(executable, [executable, "--density-only", "--services", "\(services)",
                                           "--idle-seconds", "\(idleSeconds)"])
    guard status == 0 else { throw BenchError("the density run (--density-only) ended with wait status \(status)") }
}

let rootfs: BenchRootfs
do {
    rootfs = try BenchRootfs()
} catch {
    print("spawn-bench failed: \(error)")
    exit(1)
}
// Globals are never deinitialised: the rootfs is removed explicitly on every way out.
do {
    if densityOnly {
        try await Density.measure(count: services, rootfs: rootfs, idleWindow: .seconds(idleSeconds)).printReport()
    } else {
        try await measureStartLatency(rootfs: rootfs, rounds: rounds, warmup: warmup)
        if !skipDensity { try runDensityInFreshProcess() }
    }
    rootfs.remove()
} catch {
    print("spawn-bench failed: \(error)")
    rootfs.remove()
    exit(1)
}
