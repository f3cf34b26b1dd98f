import Foundation

/// User plus system time in clock ticks, from a `/proc/…/stat` file: a process's
/// (`/proc/PID/stat`) or one thread's (`/proc/self/task/TID/stat`), fields 14 and 15.
public func cpuTicks(statFile path: String) throws -> Int {
    let stat = try String(contentsOfFile: path, encoding: .utf8)
    // The command name, in parentheses, may hold spaces: the state (field 3) follows its last
    // ")", so utime and stime are the 12th and 13th fields after it.
    guard let close = stat.lastIndex(of: ")") else { throw CPUTicksUnreadable(path: path, stat: stat) }
    let fields = stat[stat.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { throw CPUTicksUnreadable(path: path, stat: stat) }
    return user + system
}

struct CPUTicksUnreadable: Error, CustomStringConvertible {
    let path: String
    let stat: String
    var description: String { "\(path) holds no CPU times: \(stat)" }
}
