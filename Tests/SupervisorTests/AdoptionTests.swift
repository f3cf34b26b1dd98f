import CSpawn
import Foundation
import Glibc
import Synchronization
import Testing
import TestSupport

@testable import Supervisor

/// Surviving the agent: a supervisor process (supervisor-testd) is killed with SIGKILL while 50
/// services run and log; the next one adopts them.
@Suite(.dedicatedThread, .enabled(if: isRoot, "needs root: namespaces and cgroups"), .enabled(if: testDaemonBuilt, "build supervisor-testd first"),
       .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct AdoptionTests {
    struct Line {
        var pid: Int32
        var launches: Int
        var restarts: Int
        var adopted: Bool
        var phase: String
        var lastExit: String
    }

    @Test func fiftyServicesSurviveASupervisorKilledWithSIGKILL() async throws {
        // Orphans of the killed supervisor come to this process (a subreaper) rather than to init,
        // so that the test can reap them once they end.
        _ = fl_set_child_subreaper()
        let rootfs = try BusyboxRootfs()
        let tag = UUID().uuidString.prefix(8).lowercased()
        let state = NSTemporaryDirectory() + "flotilla-adopt-" + tag
        let parent = "flotilla-test-" + tag
        let statusFile = state + ".status"
        let prefix = "svc"
        let count = 50
        let daemons = Mutex<[Process]>([])
        defer {
            // A run that failed midway leaves a supervisor and its services running: kill them
            // all (services first by their cgroups) so that nothing outlives the test.
            for daemon in daemons.withLock({ $0 }) where daemon.isRunning { kill(daemon.processIdentifier, SIGKILL) }
            let mounts = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/cpu", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids",
                          "/sys/fs/cgroup/freezer", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup"]
            for _ in 0..<20 {
                var left = false
                for mount in mounts {
                    for child in FileSystem.entries(of: mount + "/" + parent) where child.hasPrefix(prefix) {
                        let directory = mount + "/" + parent + "/" + child
                        for pid in ((try? FileIO.readText(directory + "/cgroup.procs")) ?? "").split(separator: "\n") {
                            if let pid = Int32(pid) { kill(pid, SIGKILL) }
                        }
                        if rmdir(directory) != 0 { left = true }
                    }
                    rmdir(mount + "/" + parent)
                }
                if !left { break }
                usleep(100_000)
            }
            FileSystem.removeTree(state)
            unlink(statusFile)
        }
        func startDaemon() throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: testDaemonPath)
            process.arguments = ["run", "--state", state, "--parent", parent, "--rootfs", rootfs.path, "--count", "\(count)",
                                 "--prefix", prefix, "--status", statusFile]
            try process.run()
            daemons.withLock { $0.append(process) }
            return process
        }
        func readStatus() async throws -> [String: Line] {
            #expect(await eventually(within: .seconds(60)) { FileManager.default.fileExists(atPath: statusFile) })
            let text = try String(contentsOfFile: statusFile, encoding: .utf8)
            var lines: [String: Line] = [:]
            for row in text.split(separator: "\n") {
                let fields = row.split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
                guard fields.count == 7 else { continue }
                lines[fields[0]] = Line(pid: Int32(fields[1]) ?? 0, launches: Int(fields[2]) ?? 0, restarts: Int(fields[3]) ?? 0,
                                        adopted: fields[4] == "true", phase: fields[5], lastExit: fields[6])
            }
            return lines
        }

        let first = try startDaemon()
        let before = try await readStatus()
        #expect(before.count == count)
        #expect(before.values.allSatisfy { $0.launches == 1 && !$0.adopted && $0.pid > 0 })
        try await Task.sleep(for: .seconds(1))
        kill(first.processIdentifier, SIGKILL)
        first.waitUntilExit()
        unlink(statusFile)

        // No supervisor: the services keep running and logging into their pipes. One of them
        // is killed meanwhile; it stays a zombie (nobody reaps it yet), so its status is known.
        let victim = "\(prefix)-0"
        let victimPid = try #require(before[victim]?.pid)
        kill(victimPid, SIGKILL)
        try await Task.sleep(for: .seconds(1))
        for (id, line) in before where id != victim {
            #expect(kill(line.pid, 0) == 0 && ProcessStat.read(line.pid)?.state != "Z", "\(id) died with its supervisor")
        }

        let second = try startDaemon()
        let after = try await readStatus()
        #expect(after.count == count)
        for (id, line) in after where id != victim {
            #expect(line.pid == before[id]?.pid, "\(id) is a different process")
            #expect(line.launches == 1 && line.restarts == 0, "\(id) was restarted")
            #expect(line.adopted && line.phase == "running", "\(id) was not adopted: \(line.phase)")
        }
        let relaunched = try #require(after[victim])
        // Handled by its restart policy (a restart after the 100 ms backoff), with its real status.
        #expect(relaunched.restarts == 1 && !relaunched.adopted)
        #expect(relaunched.lastExit == "killed by signal 9 (SIGKILL)")

        // The adopted services' output still reaches their logs: each logs 20 more lines after
        // the adoption. Counted rather than timed, since a loaded machine runs their loops slowly
        // (CI once saw 25 lines in the time this machine writes 100).
        let adoptedIndexes = (0..<count).filter { "\(prefix)-\($0)" != victim }
        func loggedLines(_ index: Int) throws -> [Int] {
            try LogReader(directory: state + "/instances/\(prefix)-\(index)/log").lines().map { Int($0.text) ?? -1 }
        }
        let atAdoption = try Dictionary(uniqueKeysWithValues: adoptedIndexes.map { ($0, try loggedLines($0).count) })
        var stalled: [Int] = []
        let flowing = try await eventually(within: .seconds(60)) {
            stalled = try adoptedIndexes.filter { try loggedLines($0).count < atAdoption[$0, default: 0] + 20 }
            return stalled.isEmpty
        }
        #expect(flowing, "no new lines after adoption from \(stalled.map { "\(prefix)-\($0)" })")

        // SIGTERM: the second supervisor stops every service. Their zombies are ours to reap.
        kill(second.processIdentifier, SIGTERM)
        let pids = before.values.map(\.pid)
        var status: Int32 = 0
        while second.isRunning {
            for pid in pids { _ = waitpid(pid, &status, WNOHANG) }
            try await Task.sleep(for: .milliseconds(10))
        }
        for pid in pids { _ = waitpid(pid, &status, WNOHANG) }
        #expect(second.terminationStatus == 0)

        // Every line of every adopted service is there once, in order, across the gap.
        var total = 0
        for index in adoptedIndexes {
            let numbers = try loggedLines(index)
            total += numbers.count
            #expect(numbers == Array(1...max(numbers.count, 1)), "\(prefix)-\(index): lines lost or repeated")
        }
        print("adoption: \(total) lines from \(count - 1) adopted services, none lost")
        for mount in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory"] {
            #expect(FileSystem.entries(of: mount + "/" + parent).filter { $0.hasPrefix(prefix) } == [])
        }
    }
}
