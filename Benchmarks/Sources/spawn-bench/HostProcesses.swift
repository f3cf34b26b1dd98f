import Foundation
import Glibc

/// The host's processes as /proc lists them. The density run compares the set of pids before
/// and after (not their counts, which processes that end meanwhile would offset), and sorts what
/// is new into the services, the supervisor's own helpers, and others' work on this machine.
enum HostProcesses {
    /// Every process there is now.
    static func all() -> Set<pid_t> {
        Set(((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { pid_t($0) })
    }

    /// A process's command name and parent (fields 2 and 4 of /proc/PID/stat); nil once it is gone.
    static func stat(_ pid: pid_t) -> (name: String, parent: pid_t)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")")
        else { return nil }
        // The name may hold spaces and parentheses: fields after it start past the last ')'.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 1, let parent = pid_t(fields[1]) else { return nil }
        return (String(text[text.index(after: open)..<close]), parent)
    }

    /// Whether `pid` is `ancestor` or descends from it, following parents up to init.
    static func descends(_ pid: pid_t, from ancestor: pid_t) -> Bool {
        var current = pid
        for _ in 0..<64 {
            if current == ancestor { return true }
            guard current > 1, let parent = stat(current)?.parent else { return false }
            current = parent
        }
        return false
    }

    /// Whether `pid`'s cgroup (any hierarchy of /proc/PID/cgroup) lies under `parent`.
    static func isInCgroup(_ pid: pid_t, under parent: String) -> Bool {
        let membership = (try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8)) ?? ""
        return membership.split(separator: "\n").contains { $0.contains("/" + parent + "/") || $0.hasSuffix("/" + parent) }
    }

    /// Every process whose parent is this one.
    static func children(of parent: pid_t, among pids: Set<pid_t>) -> Set<pid_t> {
        pids.filter { stat($0)?.parent == parent }
    }
}
