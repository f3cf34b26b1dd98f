import CSpawn
import Glibc

/// The fields of /proc/PID/stat the supervisor uses to recognise a process after an agent
/// restart (proc(5)): a pid alone may have been reused; pid and start time together name one
/// process for the whole boot.
struct ProcessStat: Sendable, Hashable {
    /// Field 3: R, S, D, Z (zombie), T…
    var state: Character
    /// Field 22: start time in clock ticks since boot.
    var startTimeTicks: UInt64
    /// Field 52 (Linux 3.5+): the exit status in waitpid(2) form; meaningful for a zombie.
    var exitCode: Int32?

    /// Reads /proc/`pid`/stat; nil when there is no such process.
    static func read(_ pid: pid_t) -> ProcessStat? {
        guard let text = try? FileIO.readText("/proc/\(pid)/stat") else { return nil }
        return parse(text)
    }

    /// Parses the text after the command name, which is in parentheses and may itself contain
    /// spaces and parentheses: the last `)` ends it.
    static func parse(_ text: String) -> ProcessStat? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        // fields[0] is field 3.
        guard fields.count >= 20, let state = fields[0].first, let start = UInt64(fields[19]) else { return nil }
        let exitCode = fields.count >= 50 ? Int32(fields[49].trimmingCharacters(in: ["\n"])) : nil
        return ProcessStat(state: state, startTimeTicks: start, exitCode: exitCode)
    }
}

extension Substring {
    func trimmingCharacters(in characters: Set<Character>) -> Substring {
        var text = self
        while let last = text.last, characters.contains(last) { text.removeLast() }
        return text
    }
}

/// A process recorded in the state directory: enough to find it again after an agent restart.
public struct ProcessIdentity: Sendable, Hashable, Codable {
    /// Its pid in the supervisor's pid namespace.
    public var pid: Int32
    /// /proc/PID/stat field 22.
    public var startTimeTicks: UInt64
}

/// How a process that is not our child ended (an adopted instance's: after an agent restart the
/// services are children of whoever reaped the agent's orphans). While it is a zombie,
/// /proc/PID/stat field 52 has its status; once reaped, PIDFD_INFO_EXIT (Linux 6.15+) through the
/// pidfd held since adoption. Polls briefly between the two; nil when neither tells.
enum ForeignExit {
    static func termination(pidFD: Int32, identity: ProcessIdentity, within timeout: Duration = .milliseconds(200))
        -> InstanceExit.Termination?
    {
        let deadline = ContinuousClock.now + timeout
        var pause = Duration.microseconds(100)
        while true {
            var info = fl_pidfd_info()
            if fl_pidfd_info(pidFD, UInt64(FL_PIDFD_INFO_EXIT), &info) == 0, info.mask & UInt64(FL_PIDFD_INFO_EXIT) != 0 {
                return termination(waitStatus: info.exit_code)
            }
            if let stat = ProcessStat.read(identity.pid), stat.startTimeTicks == identity.startTimeTicks,
                stat.state == "Z", let code = stat.exitCode
            {
                return termination(waitStatus: code)
            }
            if ContinuousClock.now >= deadline { return nil }
            InstanceCgroup.sleep(pause)
            pause = min(pause * 2, .milliseconds(10))
        }
    }

    static func termination(waitStatus status: Int32) -> InstanceExit.Termination {
        let signal = status & 0x7f
        if signal == 0 { return .exited(code: (status >> 8) & 0xff) }
        return .signaled(signal: signal, coreDumped: status & 0x80 != 0)
    }
}
