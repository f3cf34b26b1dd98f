import Foundation
import Glibc
import ImagePull
import Images
import Supervisor

// Issue 17's figures, our code and its peers in the same run:
// 1. a cold pull and unpack of a ~50 MB image from a local registry (Debian's docker-registry
//    over TLS), against `skopeo copy` + `umoci unpack` of the same image, rounds alternating;
// 2. the start of an instance from an already-unpacked image (overlay mount included) against
//    a start from a rootfs directory, both launching busybox `true` through the Supervisor;
// 3. the disk used by 20 instances of one image.
//
//   swift run -c release --package-path Benchmarks image-bench [--megabytes 50] [--rounds 3] [--starts 40]

func option(_ name: String, default value: Int) -> Int {
    let arguments = CommandLine.arguments
    guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count, let number = Int(arguments[index + 1]) else { return value }
    return number
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.isEmpty ? .nan : sorted[sorted.count / 2]
}

func text(_ value: Double, _ decimals: Int = 2) -> String { String(format: "%.\(decimals)f", value) }

/// Bytes a directory tree takes on disk (allocated blocks, each inode once), as `du` counts.
func diskUsage(_ path: String) throws -> Int64 {
    let output = try run("/usr/bin/du", ["-s", "-B1", path])
    return Int64(output.split(separator: "\t").first ?? "0") ?? 0
}

let megabytes = option("--megabytes", default: 50)
let rounds = option("--rounds", default: 3)
let starts = option("--starts", default: 40)
let work = NSTemporaryDirectory() + "flotilla-image-bench-\(getpid())"
try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(atPath: work) }

let registry = try BenchRegistry(directory: work + "/registry")
defer { registry.stop() }
let image = try BenchImage.make(in: work + "/image", megabytes: megabytes, layers: 5, tag: "1")
try image.push(to: registry, repository: "bench")
let reference = "\(registry.address)/bench:1"
print("image-bench: \(megabytes) MB in 5 gzip layers of random files (256 KiB each) plus busybox, from docker-registry over TLS on \(registry.address)")

// 1. Cold pull and unpack.
var ours: [Double] = []
var theirs: [Double] = []
for round in 0..<rounds {
    for contender in round % 2 == 0 ? ["flotilla", "peer"] : ["peer", "flotilla"] {
        let directory = work + "/pull-\(round)-\(contender)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Written back and dropped from the page cache, so that each round starts cold alike.
        sync()
        try? "3\n".write(toFile: "/proc/sys/vm/drop_caches", atomically: false, encoding: .utf8)
        let start = ContinuousClock.now
        if contender == "flotilla" {
            let puller = try ImagePuller(root: directory, access: RegistryAccess(caFile: registry.caFile))
            _ = try await puller.pull(try ImageReference(parsing: reference))
            ours.append(seconds(ContinuousClock.now - start))
            try await puller.shutdown()
        } else {
            try run("/usr/bin/skopeo", ["copy", "--quiet", "--src-cert-dir", registry.certDirectory, "docker://\(reference)", "oci:\(directory)/oci:1"])
            try run("/usr/bin/umoci", ["unpack", "--image", "\(directory)/oci:1", "\(directory)/bundle"])
            theirs.append(seconds(ContinuousClock.now - start))
        }
        try FileManager.default.removeItem(atPath: directory)
    }
}
print("\nCold pull + unpack (\(rounds) rounds, order alternating, page cache dropped before each)")
print("  flotilla             median \(text(median(ours))) s   \(ours.map { text($0) })")
print("  skopeo copy + umoci  median \(text(median(theirs))) s   \(theirs.map { text($0) })")
print("  flotilla / peer = \(text(median(ours) / median(theirs)))   (goal ≤ 1)")

// 2. Start latency from an unpacked image against a rootfs directory.
let store = work + "/store"
let puller = try ImagePuller(root: store, access: RegistryAccess(caFile: registry.caFile))
let pulled = try await puller.pull(try ImageReference(parsing: reference))
try await puller.shutdown()
let layers = try LayerStore(root: store, blobs: BlobStore(root: store))
let layerPaths = pulled.layers.map { layers.path(of: $0) }
let rootfs = work + "/rootfs"
try FileManager.default.createDirectory(atPath: rootfs + "/bin", withIntermediateDirectories: true)
try FileManager.default.copyItem(atPath: "/usr/bin/busybox", toPath: rootfs + "/bin/busybox")
try FileManager.default.createSymbolicLink(atPath: rootfs + "/bin/true", withDestinationPath: "busybox")
let supervisor = try Supervisor(cgroupParent: "flotilla-image-bench-\(getpid())")
let limits = CgroupLimits(memoryMaxBytes: 64 << 20, cpuMaxMicroCores: 1_000_000, cpuWeight: 100, pidsMax: 64)

func launch(_ id: String, root: String) async throws {
    var spec = LaunchSpec(instanceID: id, command: ["/bin/true"], root: .directory(root))
    spec.cgroupLimits = limits
    let instance = try supervisor.launch(spec)
    let exit = await instance.wait()
    guard exit.termination == .exited(code: 0), exit.cleanupError == nil else { throw BenchError("\(id): \(exit)") }
}

var fromImage: [Double] = []
var mounts: [Double] = []
var fromRootfs: [Double] = []
for round in 0..<(starts + 5) {
    for contender in round % 2 == 0 ? ["image", "rootfs"] : ["rootfs", "image"] {
        let id = "bench-\(getpid())-\(round)-\(contender)"
        if contender == "image" {
            let root = try InstanceRoot(layers: layerPaths, directory: work + "/instances/" + id)
            let start = ContinuousClock.now
            try root.mount()
            let mounted = seconds(ContinuousClock.now - start)
            try await launch(id, root: root.rootfs)
            let took = seconds(ContinuousClock.now - start)
            try root.unmountAndRemove()
            if round >= 5 {
                fromImage.append(took)
                mounts.append(mounted)
            }
        } else {
            let start = ContinuousClock.now
            try await launch(id, root: rootfs)
            if round >= 5 { fromRootfs.append(seconds(ContinuousClock.now - start)) }
        }
    }
}
print("\nStart of busybox true until it has exited and its cgroup is gone (\(starts) rounds after 5 warm-up, alternating)")
print("  from the image (overlay mount included)  median \(text(median(fromImage) * 1e6, 0)) µs")
print("  from a rootfs directory                  median \(text(median(fromRootfs) * 1e6, 0)) µs")
print("  of which the overlay's mount             median \(text(median(mounts) * 1e6, 0)) µs (\(layerPaths.count) layers)")
print("  image / rootfs = \(text(median(fromImage) / median(fromRootfs)))   (goal ≤ 1.2)")

// 3. Disk used by 20 instances of the image, each with its overlay mounted and a file written.
var roots: [InstanceRoot] = []
for index in 0..<20 {
    let root = try InstanceRoot(layers: layerPaths, directory: work + "/density/\(index)")
    try root.mount()
    try "instance \(index)\n".write(toFile: root.rootfs + "/written", atomically: false, encoding: .utf8)
    roots.append(root)
}
let layerBytes = try layerPaths.reduce(Int64(0)) { $0 + (try diskUsage($1)) }
let upperBytes = try roots.reduce(Int64(0)) { $0 + (try diskUsage($1.upper)) + (try diskUsage($1.work)) }
for root in roots { try root.unmountAndRemove() }
print("\nDisk used by 20 instances of the image")
print("  unpacked layers, once     \(layerBytes / 1_048_576) MiB")
print("  20 upper + work dirs      \(upperBytes / 1024) KiB")
print("  total / one copy of the layers = \(text(Double(layerBytes + upperBytes) / Double(layerBytes), 3))   (goal: one copy of the layers, 1.0)")
try supervisor.cgroups.removeParent()
