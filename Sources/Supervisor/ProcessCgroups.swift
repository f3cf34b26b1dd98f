/// A process's `/proc/PID/cgroup` (cgroup(7)): one line per hierarchy, `ID:CONTROLLERS:PATH`,
/// the cgroup2 line being `0::PATH`. Read once; the process may move or exit after.
struct ProcessCgroups {
    struct Line {
        var hierarchy: Substring
        var controllers: Substring
        /// The cgroup's path from its hierarchy's root, with its leading `/`.
        var path: Substring
    }

    let lines: [Line]

    /// Nil when the file cannot be read (the process has exited).
    init?(pid: Int32) {
        guard pid > 0, let text = try? FileIO.readText("/proc/\(pid)/cgroup") else { return nil }
        lines = text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            return fields.count == 3 ? Line(hierarchy: fields[0], controllers: fields[1], path: fields[2]) : nil
        }
    }

    /// The cgroup2 line's path, if the process is on a cgroup2 hierarchy.
    var unifiedPath: String? {
        lines.first { $0.hierarchy == "0" && $0.controllers.isEmpty }.map { String($0.path) }
    }
}
