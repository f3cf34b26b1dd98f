import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// What /proc says about one process at one moment: CPU time, memory, disk writes.
struct ProcessSample {
    var pid: Int32
    var at: ContinuousClock.Instant
    /// utime + stime, in seconds.
    var cpuSeconds: Double
    var rssKiB: Int
    var peakRSSKiB: Int
    var threads: Int
    /// Bytes this process caused to be written to storage (/proc/PID/io write_bytes).
    var writeBytes: Int64

    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))

    /// Nil when the process is gone.
    static func take(_ pid: Int32) -> ProcessSample? {
        let now = ContinuousClock.now
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return nil }
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        var sample = ProcessSample(
            pid: pid, at: now, cpuSeconds: (utime + stime) / ticksPerSecond, rssKiB: 0, peakRSSKiB: 0, threads: 0, writeBytes: 0)
        if let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) {
            for line in status.split(separator: "\n") {
                let parts = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
                guard parts.count >= 2 else { continue }
                switch parts[0] {
                case "VmRSS:": sample.rssKiB = Int(parts[1]) ?? 0
                case "VmHWM:": sample.peakRSSKiB = Int(parts[1]) ?? 0
                case "Threads:": sample.threads = Int(parts[1]) ?? 0
                default: break
                }
            }
        }
        if let io = try? String(contentsOfFile: "/proc/\(pid)/io", encoding: .utf8) {
            for line in io.split(separator: "\n") where line.hasPrefix("write_bytes:") {
                sample.writeBytes = Int64(line.dropFirst("write_bytes:".count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
        }
        return sample
    }

    /// CPU used between `earlier` and this sample, as a percentage of one core.
    func cpuPercent(since earlier: ProcessSample) -> Double {
        let elapsed = seconds(at - earlier.at)
        guard elapsed > 0 else { return 0 }
        return (cpuSeconds - earlier.cpuSeconds) / elapsed * 100
    }
}

/// The whole machine's CPU time (from /proc/stat), to show how much of the 2 cores was left.
struct MachineSample {
    var busy: Double
    var total: Double

    static func take() -> MachineSample {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return MachineSample(busy: 0, total: 0) }
        let values = line.split(separator: " ").dropFirst().compactMap { Double($0) }
        let total = values.reduce(0, +)
        let idle = (values.count > 3 ? values[3] : 0) + (values.count > 4 ? values[4] : 0)
        return MachineSample(busy: total - idle, total: total)
    }

    /// Busy share of all cores between the two samples, 0...100.
    func busyPercent(since earlier: MachineSample) -> Double {
        let total = total - earlier.total
        return total > 0 ? (busy - earlier.busy) / total * 100 : 0
    }
}

/// Latencies, summarised by percentile.
struct LatencySample {
    private(set) var nanoseconds: [Int64] = []

    mutating func record(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        nanoseconds.append(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    mutating func merge(_ other: LatencySample) { nanoseconds += other.nanoseconds }

    var count: Int { nanoseconds.count }

    /// The value below which `fraction` of the samples fall (nearest rank), in milliseconds.
    func percentileMilliseconds(_ fraction: Double) -> Double {
        let sorted = nanoseconds.sorted()
        guard !sorted.isEmpty else { return 0 }
        let rank = min(sorted.count - 1, max(0, Int((fraction * Double(sorted.count)).rounded(.up)) - 1))
        return Double(sorted[rank]) / 1e6
    }

    var summary: String {
        guard !nanoseconds.isEmpty else { return "no samples" }
        return "p50 \(format(percentileMilliseconds(0.5), 2)) ms   p99 \(format(percentileMilliseconds(0.99), 2)) ms   "
            + "max \(format(percentileMilliseconds(1), 1)) ms   (\(count) calls)"
    }
}

func seconds(_ duration: Duration) -> Double {
    let (whole, attoseconds) = duration.components
    return Double(whole) + Double(attoseconds) / 1e18
}

func format(_ value: Double, _ digits: Int = 1) -> String {
    guard value.isFinite else { return "\(value)" }
    return String(format: "%.\(digits)f", value)
}

func mebibytes(_ kibibytes: Int) -> String { format(Double(kibibytes) / 1024, 1) + " MiB" }

func padded(_ label: String, _ width: Int = 44) -> String {
    label + String(repeating: " ", count: max(1, width - label.count))
}

/// Wall-clock milliseconds, as entries are stamped.
func unixMilliseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
}

func log(_ text: String) {
    let elapsed = seconds(ContinuousClock.now - benchStart)
    print("[\(format(elapsed, 1))s] \(text)")
    fflush(nil)
}

let benchStart = ContinuousClock.now
