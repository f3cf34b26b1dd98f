import Foundation
import Glibc

/// Whether process `pid` still runs: it exists and is not a zombie.
///
/// `kill(pid, 0)` alone is not enough in this test process. A `NodeSupervisor` makes the
/// process it runs in a child subreaper, and under the full suite some test has made this one
/// so: a service orphaned by an agent the test restarted is reparented here, and once killed it
/// stays a zombie, which `kill` still finds. Such a zombie of ours is reaped on the way.
public func processIsRunning(_ pid: Int32) -> Bool {
    guard pid > 0, kill(pid, 0) == 0 else { return false }
    guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    // The command name, in parentheses, may hold spaces: the fields after its last ")" are
    // the state and the parent's pid.
    guard let close = stat.lastIndex(of: ")") else { return true }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count >= 2, fields[0] == "Z" else { return true }
    if Int32(fields[1]) == getpid() { _ = waitpid(pid, nil, WNOHANG) }
    return false
}
