import Foundation
import Glibc
import Supervisor
import Synchronization

/// A busybox-static root filesystem in a temporary directory (the binary and a link per applet).
final class BenchRootfs {
    let path: String

    init() throws {
        path = NSTemporaryDirectory() + "flotilla-bench-rootfs-" + UUID().uuidString.prefix(8)
        let files = FileManager.default
        for directory in ["bin", "etc", "proc", "dev", "sys", "tmp", "data", "www"] {
            try files.createDirectory(atPath: path + "/" + directory, withIntermediateDirectories: true)
        }
        try files.copyItem(atPath: "/usr/bin/busybox", toPath: path + "/bin/busybox")
        for applet in ["sh", "cat", "true", "sleep", "httpd", "echo"] {
            try files.createSymbolicLink(atPath: path + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/:/bin/sh\n".write(toFile: path + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\n".write(toFile: path + "/etc/group", atomically: true, encoding: .utf8)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// Whether service output also goes to journald: the figures are taken both ways, since
/// forwarding is on by default wherever journald runs.
enum Forwarding: String {
    case off, on

    var journalMode: NodeSupervisor.JournalMode { self == .on ? .automatic : .disabled }
    var label: String { "journald forwarding \(rawValue)" }
}

/// A node supervisor with its own state directory and parent cgroup, removed afterwards.
final class BenchNode {
    let node: NodeSupervisor
    let state: String
    let parent: String

    /// Every event of every instance, in order.
    let events = EventLog()

    init(_ forwarding: Forwarding) throws {
        let tag = UUID().uuidString.prefix(8).lowercased()
        state = NSTemporaryDirectory() + "flotilla-bench-" + tag
        parent = "flotilla-bench-" + tag
        let events = self.events
        node = try NodeSupervisor(NodeSupervisor.Configuration(
            stateDirectory: state, cgroupParent: parent, journal: forwarding.journalMode,
            eventHandler: { _, event in events.append(event) }))
        if forwarding == .on && !node.forwardsToJournal {
            throw BenchFailure("journald forwarding asked for, but no journald listens on /run/systemd/journal/socket")
        }
    }

    func finish() async {
        await node.shutdown()
        try? node.supervisor.cgroups.removeParent()
        try? FileManager.default.removeItem(atPath: state)
    }
}

/// Events collected from the node's event handler.
final class EventLog: Sendable {
    private let events = Mutex<[InstanceEvent]>([])

    func append(_ event: InstanceEvent) {
        events.withLock { $0.append(event) }
    }

    var all: [InstanceEvent] {
        events.withLock { $0 }
    }
}

struct BenchFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func median(_ values: [Duration]) -> Duration {
    let sorted = values.sorted()
    return sorted.isEmpty ? .zero : sorted[sorted.count / 2]
}

func milliseconds(_ duration: Duration) -> String {
    String(format: "%.3f ms", Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15)
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

/// This process's user + system CPU time.
func processCPUTime() -> Duration {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return .seconds(Int64(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec))
        + .microseconds(Int64(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec))
}

/// This process's resident memory, from /proc/self/statm.
func residentBytes() -> Int {
    let text = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
    let pages = Int(text.split(separator: " ").dropFirst().first ?? "0") ?? 0
    return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
}

/// "N MiB" when `bytes` is a whole number of MiB, else "N KiB".
func sizeText(_ bytes: Int) -> String {
    bytes % (1 << 20) == 0 ? "\(bytes >> 20) MiB" : "\(bytes >> 10) KiB"
}

/// `count` lines of increasing numbers, about `bytes` in all.
func numberedLines(bytes: Int) -> Data {
    var data = Data(capacity: bytes + 16)
    var number = 1
    while data.count < bytes {
        data.append(contentsOf: Array(String(number).utf8))
        data.append(UInt8(ascii: "\n"))
        number += 1
    }
    return data
}

/// CPU ticks (user + system) of each thread of this process, by thread id, with its name.
func threadTicks() -> [Int: (name: String, ticks: Int)] {
    var result: [Int: (String, Int)] = [:]
    for task in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
        guard let tid = Int(task), let text = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
            let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")")
        else { continue }
        let name = String(text[text.index(after: open)..<close])
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3; utime and stime are fields 14 and 15.
        guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { continue }
        result[tid] = (name, user + system)
    }
    return result
}
