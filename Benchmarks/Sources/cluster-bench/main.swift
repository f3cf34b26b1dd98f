// cluster-bench: issue 13's figures, on 3 real release agentd servers on loopback and up to
// thousands of client agents simulated in this process (each a real member: joined with the
// token, its own certificate, mutual-TLS connections to every server).
//
//   swift build -c release --scratch-path .build-release --product agentd     (in the repository)
//   swift run -c release --package-path Benchmarks cluster-bench liveness   [--clients 1000] [--window 60]
//   swift run -c release --package-path Benchmarks cluster-bench scheduling [--instances 100000] [--clients 1000]
//   swift run -c release --package-path Benchmarks cluster-bench scheduler  (the scheduler alone, in-process)
//   or Benchmarks/scripts/cluster-bench MODE [flags], which builds both first.
//
// 1. liveness: N clients heartbeating every second: Raft entries per second they cause (goal:
//    0 while nothing changes), the leader's CPU (utime+stime from /proc, % of one core) and
//    memory, heartbeat call latency; next to the idle cluster and to the same clients with
//    their heartbeats paused.
// 2. scheduling: N simulated nodes registered and heartbeating; applications totalling M
//    instances applied through the API; time from the first apply until every instance is
//    placed as a follower's replica shows it: instances placed per second (goal >= 10,000/s;
//    Nomad reports 3,750/s for C1M on 5 servers), with the leader's CPU, memory and log growth.
//
// Run as root (agentd needs it). Everything is removed on exit: the servers, their state
// directory, cgroups flotilla-cbench-*.
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

_ = benchStart


let options: BenchOptions
do {
    options = try BenchOptions.parse(Array(CommandLine.arguments.dropFirst()))
} catch {
    if "\(error)" != "" { print("cluster-bench: \(error)") }
    print(BenchOptions.usage)
    exit(2)
}

// 1,000 clients hold 3 connections each here, and each server 1,000+: raise the descriptor
// limit to the hard one (the servers inherit it).
var limit = rlimit()
getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
limit.rlim_cur = limit.rlim_max
setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)

/// The cluster to tear down, whatever ends the run.
let running = Mutex<ServerCluster?>(nil)

func tearDown() {
    // Simulated clients still connected would log every connection the servers' end closes.
    fflush(nil)
    let null = open("/dev/null", O_WRONLY)
    if null >= 0 { dup2(null, 2) }
    running.withLock { cluster in
        cluster?.stop()
        cluster = nil
    }
}

var signalSources: [any DispatchSourceSignal] = []
for number in [SIGINT, SIGTERM, SIGHUP] {
    signal(number, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
    source.setEventHandler {
        print("\ncluster-bench: signal \(number); stopping the servers")
        tearDown()
        exit(130)
    }
    source.resume()
    signalSources.append(source)
}

if options.mode == .scheduler {
    do {
        try SchedulerReference.run(options)
    } catch {
        print("cluster-bench failed: \(error)")
        exit(1)
    }
    exit(0)
}

print("cluster-bench \(options.mode.rawValue): agentd \(options.agentd)")
print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, "
    + "\(ProcessInfo.processInfo.physicalMemory >> 30) GiB; servers, clients and this process share them")
ServerCluster.removeCgroups()
var failed = false
do {
    let cluster = try ServerCluster(agentd: options.agentd, baseDirectory: options.baseDirectory, keepDirectory: options.keepDirectory)
    running.withLock { $0 = cluster }
    log("starting 3 servers in \(cluster.root)")
    do {
        try await cluster.start()
    } catch {
        for server in cluster.servers { print("--- \(server.name) log:\n\(cluster.logTail(server))") }
        throw error
    }
    log("3 voters: " + cluster.servers.map { "\($0.name) (id \($0.memberID), pid \($0.pid), port \($0.port))" }.joined(separator: ", "))
    switch options.mode {
    case .liveness: try await LivenessRun.run(options, cluster: cluster)
    case .scheduling: try await SchedulingRun.run(options, cluster: cluster)
    case .scheduler: break
    }
    for server in cluster.servers where !server.isRunning {
        print("server \(server.name) exited during the run (status \(server.process.terminationStatus)); its log ends:\n\(cluster.logTail(server))")
    }
} catch {
    print("cluster-bench failed: \(error)")
    failed = true
}
tearDown()
exit(failed ? 1 : 0)
