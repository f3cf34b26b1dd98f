import Foundation
import Manifest
import Supervisor

/// Log capture throughput: a service `cat`s a file of numbered lines to its stdout (captured by
/// the supervisor into rotated files), against the same service `cat`ing it into a file itself,
/// in the same run; then 100 services at once, both ways.
enum LogThroughput {
    static func run(rootfs: BenchRootfs, megabytes: Int, services: Int, megabytesEach: Int) async throws {
        try numberedLines(bytes: megabytes << 20).write(to: URL(fileURLWithPath: rootfs.path + "/data/lines"))
        try numberedLines(bytes: megabytesEach << 20).write(to: URL(fileURLWithPath: rootfs.path + "/data/small"))
        var catTimes: [Duration] = []
        var captureTimes: [Duration] = []
        for round in 0..<3 {
            catTimes.append(try await timed(rootfs: rootfs, scripts: ["cat /data/lines > /tmp/out-\(round)"]))
            unlink(rootfs.path + "/tmp/out-\(round)")
            captureTimes.append(try await timed(rootfs: rootfs, scripts: ["cat /data/lines"]))
        }
        let catMedian = median(catTimes)
        let captureMedian = median(captureTimes)
        let size = Double(megabytes)
        print("== Log capture, one service writing \(megabytes) MiB of lines")
        print(String(format: "  cat to a file:         %@  (%.0f MiB/s)", milliseconds(catMedian), size / seconds(catMedian)))
        print(String(format: "  captured by the supervisor: %@  (%.0f MiB/s)", milliseconds(captureMedian), size / seconds(captureMedian)))
        print(String(format: "  ratio (capture / cat throughput): %.2f  (goal >= 0.5)", seconds(catMedian) / seconds(captureMedian)))

        let many = try await timed(rootfs: rootfs, scripts: (0..<services).map { _ in "cat /data/small" })
        let manyCat = try await timed(rootfs: rootfs, scripts: (0..<services).map { "cat /data/small > /tmp/many-\($0)" })
        for index in 0..<services { unlink(rootfs.path + "/tmp/many-\(index)") }
        let total = Double(services * megabytesEach)
        print("== Log capture, \(services) services writing \(megabytesEach) MiB each at once")
        print(String(format: "  cat to files:          %@  (%.0f MiB/s in all)", milliseconds(manyCat), total / seconds(manyCat)))
        print(String(format: "  captured:              %@  (%.0f MiB/s in all)", milliseconds(many), total / seconds(many)))
        print(String(format: "  ratio: %.2f", seconds(manyCat) / seconds(many)))
    }

    /// Runs one service per script at once under a fresh node; returns the time until all have
    /// ended and their output is in the log files.
    static func timed(rootfs: BenchRootfs, scripts: [String]) async throws -> Duration {
        let bench = try BenchNode()
        let node = bench.node
        let root = rootfs.path
        let started = ContinuousClock.now
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, script) in scripts.enumerated() {
                group.addTask {
                    let launch = LaunchSpec(instanceID: "log-\(index)", command: ["/bin/sh", "-c", script], root: .directory(root))
                    let service = SupervisedService(serviceName: "bench", launch: launch,
                                                    policy: SupervisionPolicy(restart: RestartPolicy(policy: .never)),
                                                    logMaxFileBytes: 64 << 20, logMaxFiles: 4)
                    let instance = try await node.supervise(service)
                    _ = try await instance.wait(timeout: .seconds(600)) { $0.isFinished }
                }
            }
            try await group.waitForAll()
        }
        let took = ContinuousClock.now - started
        await bench.finish()
        return took
    }
}
