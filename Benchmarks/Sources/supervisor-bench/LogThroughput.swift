import CJournalBench
import Foundation
import Manifest
import Supervisor

/// Log capture throughput: a service `cat`s a file of numbered lines to its stdout (captured by
/// the supervisor into rotated files, and line by line to journald when forwarding is on),
/// against the same service `cat`ing it into a file itself, in the same run; then many services
/// at once, both ways. With forwarding on, also against journald's own pace: a bare C loop
/// sending the same lines with the same fields (journal_bench.c).
enum LogThroughput {
    /// How much the services write.
    struct Volume {
        /// What the one service writes.
        var bytes: Int
        /// How many services write at once, and what each writes.
        var services: Int
        var bytesEach: Int

        /// Issue 5's volumes.
        static let full = Volume(bytes: 100 << 20, services: 100, bytesEach: 5 << 20)
        /// With forwarding on, every line is a sd_journal_sendv to journald, which stores some
        /// 15,000-50,000 short lines a second on this VM: issue 5's volumes (13 M lines for the
        /// 100 MiB alone) would take many minutes, so the same lines but fewer of them.
        static let forwarded = Volume(bytes: 2 << 20, services: 100, bytesEach: 32 << 10)
    }

    static func run(rootfs: BenchRootfs, volume: Volume, forwarding: Forwarding) async throws {
        let lines = numberedLines(bytes: volume.bytes)
        let linesEach = numberedLines(bytes: volume.bytesEach)
        try lines.write(to: URL(fileURLWithPath: rootfs.path + "/data/lines"))
        try linesEach.write(to: URL(fileURLWithPath: rootfs.path + "/data/small"))
        var catTimes: [Duration] = []
        var captureTimes: [Duration] = []
        var bareSendTimes: [Duration] = []
        for round in 0..<3 {
            catTimes.append(try await timed(rootfs: rootfs, scripts: ["cat /data/lines > /tmp/out-\(round)"], forwarding))
            unlink(rootfs.path + "/tmp/out-\(round)")
            captureTimes.append(try await timed(rootfs: rootfs, scripts: ["cat /data/lines"], forwarding))
            if forwarding == .on { bareSendTimes.append(try bareJournalSend(lines)) }
        }
        let catMedian = median(catTimes)
        let captureMedian = median(captureTimes)
        let size = Double(volume.bytes) / Double(1 << 20)
        let lineCount = lines.reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
        print("== Log capture, one service writing \(sizeText(volume.bytes)) of lines (\(lineCount) lines), \(forwarding.label)")
        print(String(format: "  cat to a file:         %@  (%.1f MiB/s)", milliseconds(catMedian), size / seconds(catMedian)))
        print(String(format: "  captured by the supervisor: %@  (%.1f MiB/s, %.0f lines/s)", milliseconds(captureMedian),
                     size / seconds(captureMedian), Double(lineCount) / seconds(captureMedian)))
        print(String(format: "  ratio (capture / cat throughput): %.4f  (goal >= 0.5)", seconds(catMedian) / seconds(captureMedian)))
        if forwarding == .on {
            let bareMedian = median(bareSendTimes)
            print(String(format: "  journald's own pace (bare sd_journal_sendv loop): %@  (%.0f lines/s)", milliseconds(bareMedian),
                         Double(lineCount) / seconds(bareMedian)))
            print(String(format: "  ratio (capture / bare journald send throughput): %.2f", seconds(bareMedian) / seconds(captureMedian)))
        }

        let services = volume.services
        let many = try await timed(rootfs: rootfs, scripts: (0..<services).map { _ in "cat /data/small" }, forwarding)
        let manyCat = try await timed(rootfs: rootfs, scripts: (0..<services).map { "cat /data/small > /tmp/many-\($0)" }, forwarding)
        for index in 0..<services { unlink(rootfs.path + "/tmp/many-\(index)") }
        let total = Double(services * volume.bytesEach) / Double(1 << 20)
        let linesEachCount = linesEach.reduce(0) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
        print("== Log capture, \(services) services writing \(sizeText(volume.bytesEach)) each at once (\(linesEachCount) lines each), "
            + forwarding.label)
        print(String(format: "  cat to files:          %@  (%.1f MiB/s in all)", milliseconds(manyCat), total / seconds(manyCat)))
        print(String(format: "  captured:              %@  (%.1f MiB/s in all)", milliseconds(many), total / seconds(many)))
        print(String(format: "  ratio: %.4f", seconds(manyCat) / seconds(many)))
        if forwarding == .on {
            print("  lines forwarded to journald: \(3 * lineCount + services * linesEachCount)")
        }
    }

    /// Sends `lines` to journald from this thread with no supervisor in between; the time taken.
    static func bareJournalSend(_ lines: Data) throws -> Duration {
        let started = ContinuousClock.now
        let sent = lines.withUnsafeBytes { buffer in
            journal_bench_send_lines(buffer.baseAddress?.assumingMemoryBound(to: CChar.self), buffer.count, "bench-bare", "bare")
        }
        guard sent >= 0 else { throw BenchFailure("sd_journal_sendv: \(String(cString: strerror(Int32(-sent))))") }
        return ContinuousClock.now - started
    }

    /// Runs one service per script at once under a fresh node; returns the time until all have
    /// ended and their output is in the log files (and sent to journald when forwarding).
    static func timed(rootfs: BenchRootfs, scripts: [String], _ forwarding: Forwarding) async throws -> Duration {
        let bench = try BenchNode(forwarding)
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
