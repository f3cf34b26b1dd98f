import CSpawnBench
import Foundation
import Glibc

/// posix_spawn + waitpid: the floor any launcher is compared with.
func spawnAndWait(_ path: String, _ arguments: [String]) -> Int32 {
    let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
    defer { for argument in argv { free(argument) } }
    var pid: pid_t = 0
    guard posix_spawn(&pid, path, nil, nil, argv, environ) == 0 else { return -1 }
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status
}

/// Runs `crun` on one thread of its own that has left this host's cgroup2 mount behind in a
/// private mount namespace (crun 1.8 refuses hybrid cgroups). Timing happens on that thread, so
/// the hand-off to it is not counted.
final class CrunThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var job: (arguments: [String], continuation: CheckedContinuation<(Duration, Int32), Never>)?
    private var setupError: Int32 = 0
    private var ready = false

    init(hidingUnifiedMount unified: String?) throws {
        let thread = Thread { [self] in self.serve(hiding: unified) }
        thread.start()
        condition.lock()
        while !ready { condition.wait() }
        let error = setupError
        condition.unlock()
        if error != 0 { throw NSError(domain: "crun thread: mount namespace", code: Int(error)) }
    }

    /// Runs crun with `arguments` and returns how long it took and its wait status.
    func run(_ arguments: [String]) async -> (Duration, Int32) {
        await withCheckedContinuation { continuation in
            condition.lock()
            job = (arguments, continuation)
            condition.broadcast()
            condition.unlock()
        }
    }

    private func serve(hiding unified: String?) {
        let rc = unified.map { spawn_bench_hide_unified_cgroup($0) } ?? 0
        condition.lock()
        setupError = -rc
        ready = true
        condition.broadcast()
        condition.unlock()
        while true {
            condition.lock()
            while job == nil { condition.wait() }
            let current = job
            job = nil
            condition.unlock()
            guard let current else { continue }
            let start = ContinuousClock.now
            let status = spawnAndWait("/usr/bin/crun", ["crun"] + current.arguments)
            current.continuation.resume(returning: (ContinuousClock.now - start, status))
        }
    }
}
