import CSpawnBench
import Foundation
import Glibc

/// What this process uses: resident memory, heap in use, threads, CPU time.
enum ProcessUsage {
    /// A number field of /proc/self/status (VmRSS is in kB).
    static func statusField(_ name: String) -> Int {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        for line in status.split(separator: "\n") where line.hasPrefix(name + ":") {
            return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" })[1]) ?? -1
        }
        return -1
    }

    static var residentKiB: Int { statusField("VmRSS") }
    static var threads: Int { statusField("Threads") }

    /// Bytes malloc has handed out and not had back, every arena (mallinfo2): unlike RSS, not
    /// swayed by pages of code and stacks first touched during the run, nor by freed heap that
    /// malloc keeps.
    static var heapInUseBytes: Int { Int(spawn_bench_heap_in_use_bytes()) }

    static func cpuTime() -> Duration {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return .seconds(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
            + .microseconds(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec)
    }
}
