import Glibc

/// The cgroup hierarchies of this host (DESIGN.md §5): cgroup v2 only (modern distributions),
/// v1 only, or hybrid (v1 controllers plus a cgroup2 mount, usually without controllers).
public struct CgroupLayout: Sendable, Hashable {
    /// Which of the three arrangements this is.
    public enum Mode: String, Sendable, Hashable {
        /// Only a cgroup2 mount.
        case unified
        /// Only cgroup v1 mounts.
        case legacy
        /// v1 controllers and a cgroup2 mount.
        case hybrid
    }

    /// Where cgroup2 is mounted, if it is.
    public var unifiedMount: String?
    /// The controllers cgroup2 offers (its root's cgroup.controllers).
    public var unifiedControllers: Set<String>
    /// For each v1 controller, where its hierarchy is mounted (co-mounted ones share a path).
    public var legacyMounts: [String: String]

    /// A layout from its parts (tests build layouts by hand).
    public init(unifiedMount: String?, unifiedControllers: Set<String>, legacyMounts: [String: String]) {
        self.unifiedMount = unifiedMount
        self.unifiedControllers = unifiedControllers
        self.legacyMounts = legacyMounts
    }

    /// Which arrangement, or nil when there is no cgroup filesystem at all.
    public var mode: Mode? {
        switch (unifiedMount != nil, !legacyMounts.isEmpty) {
        case (true, false): return .unified
        case (false, true): return .legacy
        case (true, true): return .hybrid
        case (false, false): return nil
        }
    }

    /// Reads /proc/self/mountinfo and the cgroup2 root's cgroup.controllers.
    public static func detect() throws(SystemCallError) -> CgroupLayout {
        let mountInfo = try FileIO.readText("/proc/self/mountinfo")
        var layout = parse(mountInfo: mountInfo)
        if let unified = layout.unifiedMount {
            let controllers = (try? FileIO.readText(unified + "/cgroup.controllers")) ?? ""
            layout.unifiedControllers = Set(controllers.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
        }
        return layout
    }

    /// Finds cgroup and cgroup2 mounts in mountinfo text (proc(5): fields up to ` - `, then the
    /// filesystem type, the source and the super-block options, which for cgroup v1 name the
    /// controllers). The first mount of each kind wins.
    static func parse(mountInfo: String) -> CgroupLayout {
        var unified: String?
        var legacy: [String: String] = [:]
        for line in mountInfo.split(separator: "\n") {
            let parts = line.split(separator: " - ", maxSplits: 1)
            guard parts.count == 2 else { continue }
            let before = parts[0].split(separator: " ")
            let after = parts[1].split(separator: " ")
            guard before.count >= 5, after.count >= 3 else { continue }
            let mountPoint = unescape(String(before[4]))
            switch after[0] {
            case "cgroup2":
                if unified == nil { unified = mountPoint }
            case "cgroup":
                for option in after[2].split(separator: ",") where legacyControllerNames.contains(String(option)) {
                    if legacy[String(option)] == nil { legacy[String(option)] = mountPoint }
                }
            default:
                continue
            }
        }
        return CgroupLayout(unifiedMount: unified, unifiedControllers: [], legacyMounts: legacy)
    }

    /// v1 controllers (the rest of a cgroup mount's options are flags like xattr or name=).
    static let legacyControllerNames: Set<String> = [
        "blkio", "cpu", "cpuacct", "cpuset", "devices", "freezer", "hugetlb", "memory", "misc", "net_cls", "net_prio",
        "perf_event", "pids", "rdma",
    ]

    /// mountinfo escapes space, tab, newline and backslash as \ooo octal.
    private static func unescape(_ field: String) -> String {
        guard field.contains("\\") else { return field }
        var bytes: [UInt8] = []
        let utf8 = Array(field.utf8)
        var i = 0
        while i < utf8.count {
            if utf8[i] == UInt8(ascii: "\\"), i + 3 < utf8.count,
                let value = UInt8(String(decoding: utf8[(i + 1)...(i + 3)], as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                i += 4
            } else {
                bytes.append(utf8[i])
                i += 1
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
