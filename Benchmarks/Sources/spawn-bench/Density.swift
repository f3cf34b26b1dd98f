import Foundation
import Glibc
import Manifest
import Supervisor
import Synchronization

/// Many long-running services (busybox `sleep`) under one node supervisor, launched the way the
/// agent launches them: a manifest's service through `NodeSupervisor.supervise`, so that every
/// instance has its per-instance objects (state machine, log FIFOs and files, state file, notify
/// socket, event handler). Measures what each costs the supervisor in memory, whether any process
/// besides the services appeared, and what the idle supervisor burns in CPU.
///
/// Runs in a process of its own (`spawn-bench --density-only`): nothing launched before, so the
/// baseline is the node supervisor just set up, not a heap grown by earlier benchmark rounds.
/// One-time costs of the first launches (lazily made pools and caches) count against the services.
struct Density {
    var services: Int
    var launchTime: Duration
    /// Median `supervise` time of the first and of the last tenth of the services.
    var firstTenthLaunch: Duration
    var lastTenthLaunch: Duration
    var rssBeforeKiB: Int
    var rssAfterKiB: Int
    var heapBeforeBytes: Int
    var heapAfterBytes: Int
    /// Processes on the host after the launches that were not there before, less the services.
    var newProcesses: NewProcesses
    var servicesNotChildren: Int
    var threads: Int
    var idleWindow: Duration
    var idleCPU: Duration
    var teardownTime: Duration
    var cgroupsLeft: Int

    /// What appeared on the host besides the services, sorted by whose it is.
    struct NewProcesses {
        /// Descendants of the supervisor, or in its cgroups: helpers of ours.
        var helpers: [String] = []
        /// Neither: other work on this machine (compilers, shells) that started meanwhile.
        var unrelated: [String] = []
    }

    static func measure(count: Int, rootfs: BenchRootfs, idleWindow: Duration) async throws -> Density {
        let pidsBefore = HostProcesses.all()
        let service = try sleeperService(rootfs: rootfs.path)
        let state = NSTemporaryDirectory() + "flotilla-density-\(getpid())"
        let parent = "flotilla-density-\(getpid())"
        let events = EventCounter()
        // The agent's configuration (Agent.swift): journal when present, 1 MiB pipes, an event handler.
        let node = try NodeSupervisor(NodeSupervisor.Configuration(
            stateDirectory: state, cgroupParent: parent, eventHandler: { _, _ in events.increment() }))
        defer {
            try? node.supervisor.cgroups.removeParent()
            try? FileManager.default.removeItem(atPath: state)
        }
        do {
            return try await measure(count: count, service: service, node: node, parent: parent, pidsBefore: pidsBefore,
                                     idleWindow: idleWindow)
        } catch {
            await node.shutdown()
            throw error
        }
    }

    private static func measure(count: Int, service: Service, node: NodeSupervisor, parent: String,
                                pidsBefore: Set<pid_t>, idleWindow: Duration) async throws -> Density
    {
        let me = getpid()
        let rssBefore = ProcessUsage.residentKiB
        let heapBefore = ProcessUsage.heapInUseBytes
        let start = ContinuousClock.now
        var instances: [SupervisedInstance] = []
        var launchTimes: [Duration] = []
        instances.reserveCapacity(count)
        for index in 0..<count {
            let id = "sleeper-\(me)-\(index)"
            // What NodeWorker.start adds.
            let facts = InstanceFacts(instanceID: id, environment: [
                "FLOTILLA_INSTANCE": id, "FLOTILLA_SERVICE": service.name, "FLOTILLA_APPLICATION": "density",
                "FLOTILLA_NODE": "bench",
            ])
            let launchStart = ContinuousClock.now
            instances.append(try await node.supervise(SupervisedService(service: service, instance: facts)))
            launchTimes.append(ContinuousClock.now - launchStart)
        }
        let launchTime = ContinuousClock.now - start
        let tenth = max(count / 10, 1)
        try await Task.sleep(for: .seconds(1))

        var servicePids = Set<pid_t>()
        for instance in instances {
            guard let pid = await instance.status().pid else { throw BenchError("\(instance.instanceID) is not running") }
            servicePids.insert(pid)
        }
        let pidsAfter = HostProcesses.all()
        var newProcesses = NewProcesses()
        for pid in pidsAfter.subtracting(pidsBefore).subtracting(servicePids).sorted() {
            guard let stat = HostProcesses.stat(pid) else { continue }
            let text = "\(pid) \(stat.name) (parent \(stat.parent))"
            if HostProcesses.descends(pid, from: me) || HostProcesses.isInCgroup(pid, under: parent) {
                newProcesses.helpers.append(text)
            } else {
                newProcesses.unrelated.append(text)
            }
        }
        let children = HostProcesses.children(of: me, among: pidsAfter)
        let rssAfter = ProcessUsage.residentKiB
        let heapAfter = ProcessUsage.heapInUseBytes
        let threads = ProcessUsage.threads

        let cpuBefore = ProcessUsage.cpuTime()
        try await Task.sleep(for: idleWindow)
        let idleCPU = ProcessUsage.cpuTime() - cpuBefore

        let teardownStart = ContinuousClock.now
        await node.shutdown()
        let teardownTime = ContinuousClock.now - teardownStart
        let left = node.supervisor.cgroups.parentDirectories.reduce(0) { total, directory in
            total + ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasPrefix("sleeper-") }.count
        }
        return Density(
            services: count, launchTime: launchTime, firstTenthLaunch: launchTimes.prefix(tenth).sorted()[tenth / 2],
            lastTenthLaunch: launchTimes.suffix(tenth).sorted()[tenth / 2], rssBeforeKiB: rssBefore, rssAfterKiB: rssAfter,
            heapBeforeBytes: heapBefore, heapAfterBytes: heapAfter, newProcesses: newProcesses,
            servicesNotChildren: servicePids.subtracting(children).count, threads: threads, idleWindow: idleWindow,
            idleCPU: idleCPU, teardownTime: teardownTime, cgroupsLeft: left)
    }

    /// agent-bench's sleeper (Benchmarks/scripts/agent-bench), on the benchmark's rootfs.
    static func sleeperService(rootfs: String) throws -> Service {
        let manifest = """
            {"name": "density", "services": [{"name": "sleeper", "command": ["/bin/sleep", "100000"], "user": "nobody",
              "rootfs": "\(rootfs)", "readOnlyRootfs": true,
              "resources": {"cpu": 0.01, "memory": "8Mi", "pids": 4}, "discovery": {"enabled": false}}]}
            """
        guard let service = try ManifestDecoder.decode(Array(manifest.utf8)).services.first else {
            throw BenchError("the density manifest has no service")
        }
        return service
    }
}

/// Counts the node's instance events, as the agent's handler receives them.
final class EventCounter: Sendable {
    private let count = Mutex(0)

    func increment() {
        count.withLock { $0 += 1 }
    }
}
