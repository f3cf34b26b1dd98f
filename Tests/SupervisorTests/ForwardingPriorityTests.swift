import Foundation
import Glibc
import Testing

@testable import Supervisor

/// The thread forwarding published ports and upstreams runs at its configured nice value, and
/// only it: the supervisor's other threads keep the process's.
@Suite("The forwarding thread's priority", .serialized)
struct ForwardingPriorityTests {
    @Test("by default the forwarding thread runs at nice -10, the rest of the process as it was")
    func defaultNice() async throws {
        let before = Self.threadNiceValues()
        try await withTestNode { test in
            #expect(test.node.forwardingPriorityError == nil)
            let nice = try await test.node.forwardingNice()
            #expect(nice == -10)
            // One thread changed, not the process: every thread there before keeps its value.
            let after = Self.threadNiceValues()
            for (thread, nice) in before where after[thread] != nil {
                #expect(after[thread] == nice, "thread \(thread) went from nice \(nice) to \(after[thread]!)")
            }
            #expect(after.values.filter { $0 == -10 }.count >= 1)
        }
    }

    @Test("a configured value is what the forwarding thread runs at")
    func configuredNice() async throws {
        try await withTestNode(forwardingNice: 3) { test in
            #expect(test.node.forwardingPriorityError == nil)
            let nice = try await test.node.forwardingNice()
            #expect(nice == 3)
        }
    }

    @Test("a value outside -20...19 leaves the thread as it was and says why")
    func outOfRange() async throws {
        try await withTestNode(forwardingNice: 40) { test in
            #expect(test.node.forwardingPriorityError == "nice 40 is outside -20...19")
            let nice = try await test.node.forwardingNice()
            #expect(nice == getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0))
        }
    }

    /// Each thread of this process and its nice value (field 19 of /proc/self/task/TID/stat),
    /// keyed by its id and start time (field 22): other suites' nodes start and end threads
    /// meanwhile, and a thread id ended and given to another test's forwarding thread is not
    /// the thread that was there before (a CI run failed so: nice 0, then 3).
    static func threadNiceValues() -> [String: Int32] {
        var values: [String: Int32] = [:]
        for thread in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task")) ?? [] {
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(thread)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // After "pid (comm)": state is field 3, so nice (field 19) is the 17th from there.
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            if fields.count > 19, let nice = Int32(fields[16]) { values[thread + "@" + fields[19]] = nice }
        }
        return values
    }
}
