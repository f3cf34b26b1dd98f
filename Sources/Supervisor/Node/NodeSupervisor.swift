import BlockingWork
import CSpawn
import Dispatch
import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// Keeps a node's service instances alive: launches them, restarts them by policy, checks their
/// health, listens to their sd_notify messages, captures their output, and writes their state
/// under the state directory so that the next agent adopts them without a restart (DESIGN.md §4).
///
/// Threads, whatever the number of instances: one event loop (every instance's state machine and
/// timers), the exit watcher (pidfds), the log pump (output pipes), the control watcher (notify
/// sockets, HTTP and TCP probe sockets, exec checks) and the state writer; for `private`-network
/// instances, the port proxy's event loop and the thread that makes sockets in their namespaces.
public final class NodeSupervisor: Sendable {
    /// How a node supervisor is set up.
    public struct Configuration: Sendable {
        /// Where instance state, pipes, sockets and logs live (`instances/<id>/`).
        public var stateDirectory: String
        /// The node-level parent cgroup.
        public var cgroupParent: String
        /// The host's cgroup layout; nil: detected.
        public var layout: CgroupLayout?
        /// Whether service output also goes to journald.
        public var journal: JournalMode
        /// The size each output pipe is enlarged to (F_SETPIPE_SZ): how much a service can write
        /// while no supervisor drains it before its writes block.
        public var pipeBytes: Int
        /// Seeds the restart jitter and check spreading (nil: random).
        public var seed: UInt64?
        /// Called on the event loop with every instance event.
        public var eventHandler: (@Sendable (String, InstanceEvent) -> Void)?
        /// The IPv4 address the ports of `private`-network instances are published on (Docker's
        /// default too: every address of the node).
        public var publishAddress: String
        /// The nice value (-20...19) of the thread that forwards published ports' and upstreams'
        /// bytes. Below the default 0 so that, on a busy node, the instances' own traffic does not
        /// queue behind the instances' computing: the thread sleeps unless it carries their bytes,
        /// the way the kernel's network processing runs ahead of tasks. What proxy-bench measured
        /// at 0 and at -10 is in docs/discovery.md ("Its thread"), kept there only. Under cgroup
        /// v2 the instances' CPU weights still rule between cgroups; this orders the thread among
        /// the tasks it shares a level with.
        public var forwardingNice: Int32

        /// A configuration; defaults: parent cgroup `flotilla`, journal when present, 1 MiB pipes,
        /// ports published on 0.0.0.0, forwarding at nice -10.
        public init(stateDirectory: String, cgroupParent: String = "flotilla", layout: CgroupLayout? = nil,
                    journal: JournalMode = .automatic, pipeBytes: Int = 1 << 20, seed: UInt64? = nil,
                    eventHandler: (@Sendable (String, InstanceEvent) -> Void)? = nil, publishAddress: String = "0.0.0.0",
                    forwardingNice: Int32 = Self.defaultForwardingNice)
        {
            self.publishAddress = publishAddress
            self.forwardingNice = forwardingNice
            self.stateDirectory = stateDirectory
            self.cgroupParent = cgroupParent
            self.layout = layout
            self.journal = journal
            self.pipeBytes = pipeBytes
            self.seed = seed
            self.eventHandler = eventHandler
        }

        /// The forwarding thread's nice value unless configured.
        public static let defaultForwardingNice: Int32 = -10
        /// The nice values Linux has; setpriority clamps others silently, so they are refused.
        public static let niceValues: ClosedRange<Int32> = -20...19
    }

    /// Journald forwarding.
    public enum JournalMode: Sendable, Hashable {
        /// When `/run/systemd/journal/socket` exists.
        case automatic
        /// Never.
        case disabled
    }

    /// The launcher.
    public let supervisor: Supervisor
    /// The state directory.
    public let stateDirectory: String
    let configuration: Configuration
    let context: NodeContext
    private let group: MultiThreadedEventLoopGroup
    private let proxyGroup: MultiThreadedEventLoopGroup
    private let instances = Mutex<[String: SupervisedInstance]>([:])

    /// RLIMIT_NOFILE's soft limit as the process started: services get it back, while the
    /// supervisor raises its own to the hard limit (each instance holds several descriptors).
    static let inheritedOpenFilesLimit: rlimit = {
        var limit = rlimit()
        getrlimit(RLIMIT_NOFILE_VALUE, &limit)
        return limit
    }()

    private static var RLIMIT_NOFILE_VALUE: __rlimit_resource_t { __rlimit_resource_t(RLIMIT_NOFILE.rawValue) }

    /// Sets up the node: the launcher (child subreaper, parent cgroup), the threads, the state
    /// directory. Instances are added with `supervise`.
    public init(_ configuration: Configuration) throws {
        self.configuration = configuration
        stateDirectory = configuration.stateDirectory
        var limit = Self.inheritedOpenFilesLimit
        if limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max
            setrlimit(Self.RLIMIT_NOFILE_VALUE, &limit)
        }
        try FileSystem.makeDirectories(configuration.stateDirectory + "/instances")
        let supervisor = try Supervisor(layout: configuration.layout ?? CgroupLayout.detect(),
                                        cgroupParent: configuration.cgroupParent)
        self.supervisor = supervisor
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        // Forwarded bytes (published ports, upstreams) get a loop of their own: heavy traffic
        // must not delay the instances' state machines and timers on `group`. One loop, not one
        // per CPU: on 2 cores shared with the load generator and the backends, two loops made
        // the proxy slower (proxy-bench: 0.49–0.65× HAProxy's keep-alive throughput against
        // 0.69–0.73× with one), their context switches costing more than the second core gave.
        proxyGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        forwardingPriorityError = Self.setNice(configuration.forwardingNice, of: proxyGroup)
        let bootID = (try? FileIO.readText("/proc/sys/kernel/random/boot_id"))
            .map { String($0.trimmingNewlines) } ?? ""
        var seedGenerator = SeededGenerator.random()
        let journal = configuration.journal == .automatic && JournalForwarder.isAvailable ? JournalForwarder() : nil
        context = NodeContext(
            supervisor: supervisor, loop: group.next(), control: try DescriptorWatcher(name: "control"),
            logPump: try DescriptorWatcher(name: "log pump"), writer: StateWriter(), bootID: bootID, journal: journal,
            seed: configuration.seed ?? seedGenerator.next(), eventHandler: configuration.eventHandler,
            proxyGroup: proxyGroup, dialer: try NamespaceDialer(), publishAddress: configuration.publishAddress)
    }

    /// Why the forwarding thread runs at another nice value than configured (a value outside
    /// `Configuration.niceValues`, or setpriority's EPERM without CAP_SYS_NICE); nil when it took.
    public let forwardingPriorityError: String?

    /// The nice value the forwarding thread runs at.
    public func forwardingNice() async throws -> Int32 {
        try await proxyGroup.next().submit { Self.currentThreadNice() }.get()
    }

    /// Sets the nice value of the group's one thread, on that thread: Linux keeps nice per
    /// thread, and `setpriority(PRIO_PROCESS, 0, …)` sets the calling thread's.
    private static func setNice(_ nice: Int32, of group: MultiThreadedEventLoopGroup) -> String? {
        do {
            return try group.next().submit { () -> String? in
                guard Configuration.niceValues.contains(nice) else { return "nice \(nice) is outside \(Configuration.niceValues)" }
                guard setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, nice) == 0 else {
                    return "setpriority(\(nice)): \(String(cString: strerror(errno)))"
                }
                return nil
            }.wait()
        } catch {
            return "the forwarding loop did not run the change: \(error)"
        }
    }

    private static func currentThreadNice() -> Int32 {
        getpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0)
    }

    /// The node's local proxy: the agent hands it the catalog's passing instances at each change.
    public var upstreams: UpstreamDirectory {
        context.upstreams
    }

    /// Whether output is forwarded to journald.
    public var forwardsToJournal: Bool {
        context.journal != nil
    }

    /// Instance ids with a state directory (from this agent or a previous one).
    public func recordedInstanceIDs() -> [String] {
        FileSystem.entries(of: stateDirectory + "/instances").sorted()
    }

    /// The instance with this id, if this supervisor has it.
    public func instance(_ instanceID: String) -> SupervisedInstance? {
        instances.withLock { $0[instanceID] }
    }

    /// Supervises an instance: adopts its process if a previous agent left it running (no
    /// restart is counted), resumes its restart policy if it was backing off or died meanwhile,
    /// or launches it. Returns once it runs, was adopted, or has reached its end.
    public func supervise(_ service: SupervisedService) async throws -> SupervisedInstance {
        let id = service.instanceID
        if let existing = instance(id) { return existing }
        let directory = stateDirectory + "/instances/" + id
        try FileSystem.makeDirectories(directory)
        let record = InstanceRecord.read(in: directory)
        let log = try InstanceLog(directory: directory, serviceName: service.serviceName, instanceID: id,
                                  maxFileBytes: service.logMaxFileBytes, maxFiles: service.logMaxFiles,
                                  pump: context.logPump, journal: context.journal, pipeBytes: configuration.pipeBytes)
        var prepared = service
        prepared.launch = launchSpec(for: service, directory: directory)
        let generator = context.makeGenerator()
        let machine = record.map {
            InstanceStateMachine(policy: service.policy, random: generator, restoring: $0.machine)
        } ?? InstanceStateMachine(policy: service.policy, random: generator)
        let instance = SupervisedInstance(service: prepared, directory: directory, log: log, context: context,
                                          machine: machine, events: record?.events ?? [])
        try instance.attachNotifySocket()
        instances.withLock { $0[id] = instance }
        if let record {
            let found = examine(record, service: prepared)
            try await context.loop.submit {
                instance.adopt(handle: found.handle, identity: record.process, exit: found.exit, detail: found.detail)
            }.get()
        } else {
            try await instance.start()
        }
        return instance
    }

    /// Stops an instance for good and deletes its state directory (logs included).
    /// An instance only an earlier agent supervised (its state directory is all this one knows)
    /// has no stop signal to honour: its cgroup is killed and removed.
    public func remove(_ instanceID: String) async {
        // The file work below blocks (a cgroup emptied by polling for up to 5 s, pending state
        // writes with their fsyncs, a tree with up to 50 MiB of logs): on a Dispatch thread, not
        // on one of the few threads of Swift's pool, which the caller's task runs on.
        let context = self.context
        guard let instance = instance(instanceID) else {
            let directory = stateDirectory + "/instances/" + instanceID
            guard FileIO.exists(directory) else { return }
            await BlockingWork.run {
                context.removeLeftoverCgroup(instanceID)
                FileSystem.removeTree(directory)
            }
            return
        }
        _ = await instance.stop()
        try? await context.loop.submit { instance.detach() }.get()
        instances.withLock { _ = $0.removeValue(forKey: instanceID) }
        let directory = instance.directory
        await BlockingWork.run {
            context.writer.flush()
            FileSystem.removeTree(directory)
        }
    }

    /// Stops every instance (each with its stop signal and timeout), then `detach`.
    public func shutdown() async {
        let all = instances.withLock { Array($0.values) }
        await withTaskGroup(of: Void.self) { group in
            for instance in all { group.addTask { _ = await instance.stop() } }
        }
        await detach()
    }

    /// Stops supervising and leaves every process running, with its state on disk, for the next
    /// agent to adopt (an agent upgrade is a non-event for workloads). Output queues in the
    /// pipes meanwhile. Published ports of `private`-network instances close (their forwarded
    /// connections with them) until the next agent publishes them again. This object is of no
    /// further use.
    public func detach() async {
        // Launches under way finish first (on the loop, which still runs), so that every process
        // started is recorded for the next agent.
        try? await context.launches.shutdownGracefully()
        let all = instances.withLock { Array($0.values) }
        for instance in all { try? await context.loop.submit { instance.detach() }.get() }
        // Only now: a check refused by a stopped pool counts as failed, and one more failure
        // could make a healthy instance unhealthy and stop it on its way to the next agent.
        try? await context.checkLaunches.shutdownGracefully()
        context.writer.flush()
        context.control.stop()
        context.logPump.stop()
        // What the pump forwarded, sent before the agent goes (journald keeping up: at once),
        // waited for on a Dispatch thread, not one of Swift's pool.
        if let journal = context.journal {
            await BlockingWork.run { journal.flush(within: .seconds(2)) }
        }
        await context.dialer.shutdown()
        try? await proxyGroup.shutdownGracefully()
        try? await group.shutdownGracefully()
    }

    /// The launch with what supervision adds: the notify socket (a read-only bind of its
    /// directory into an instance with its own root, else its host path), WATCHDOG_USEC, and
    /// the open-files limit the agent started with.
    func launchSpec(for service: SupervisedService, directory: String) -> LaunchSpec {
        var launch = service.launch
        let notifyDirectory = directory + "/notify"
        switch launch.root {
        case .directory:
            launch.mounts.append(.bind(notifyDirectory, at: NotifySocket.mountPoint, readOnly: true))
            launch.environment["NOTIFY_SOCKET"] = NotifySocket.mountPoint + "/" + NotifySocket.socketName
        case .host:
            launch.environment["NOTIFY_SOCKET"] = notifyDirectory + "/" + NotifySocket.socketName
        }
        if let watchdog = service.policy.watchdog {
            launch.environment["WATCHDOG_USEC"] = String(watchdog.nanosecondsClamped / 1000)
        }
        if !launch.resourceLimits.contains(where: { $0.resource == .openFiles }) {
            let limit = Self.inheritedOpenFilesLimit
            launch.resourceLimits.append(ResourceLimit(.openFiles, soft: UInt64(limit.rlim_cur), hard: UInt64(limit.rlim_max)))
        }
        return launch
    }

    /// What became of the process a previous agent recorded: still running (held by a new pidfd
    /// and watched), ended while no agent ran (with its real status if it is still a zombie, or
    /// an OOM kill if its cgroup counted one), or nothing was running.
    func examine(_ record: InstanceRecord, service: SupervisedService)
        -> (handle: InstanceHandle?, exit: ExitReason?, detail: String)
    {
        let id = service.instanceID
        let cgroup = context.cgroup(of: id)
        func lost(_ detail: String, _ reason: ExitReason) -> (InstanceHandle?, ExitReason?, String) {
            var reason = reason
            if case .unknown = reason, ((try? cgroup.oomKillCount()) ?? 0) > 0 { reason = .oomKilled }
            context.removeLeftoverCgroup(id)
            return (nil, reason, detail)
        }
        guard record.machine.phase == .running || record.machine.phase.isStopping, let process = record.process else {
            context.removeLeftoverCgroup(id)
            return (nil, nil, "")
        }
        let unknown = ExitReason.unknown(detail: "exit status unknown: it ended while no supervisor ran and was reaped by another process")
        guard record.bootID == context.bootID else {
            return lost("pid \(process.pid) belonged to an earlier boot", .unknown(detail: "the host restarted"))
        }
        let fd = fl_pidfd_open(process.pid)
        guard fd >= 0 else { return lost("pid \(process.pid) is gone", unknown) }
        guard let stat = ProcessStat.read(process.pid), stat.startTimeTicks == process.startTimeTicks else {
            close(fd)
            return lost("pid \(process.pid) is gone (the number now names another process)", unknown)
        }
        if stat.state == "Z" {
            close(fd)
            let status = stat.exitCode.map { ExitReason(waitStatus: $0) } ?? unknown
            return lost("pid \(process.pid) ended while no supervisor ran (its status read from the zombie)", status)
        }
        let relative = context.relativeCgroupPath(id)
        guard ProcessCgroups(pid: process.pid)?.lines.contains(where: { $0.path == relative }) == true else {
            close(fd)
            return lost("pid \(process.pid) is no longer in cgroup \(relative)", unknown)
        }
        let pidFD = PidFD(descriptor: fd)
        // Its cgroup id read while the process is in the cgroup, which cannot be made anew meanwhile.
        let handle = InstanceHandle(
            instanceID: id, pid: process.pid, pidFD: pidFD, cgroup: cgroup, cgroupID: cgroup.unifiedID,
            mayLeaveOrphans: !service.launch.namespaces.contains(.pid),
            foreignTermination: { ForeignExit.termination(pidFD: pidFD.descriptor, identity: process) })
        do {
            try supervisor.watcher.watch(handle)
        } catch {
            return lost("pid \(process.pid) could not be watched: \(error)", unknown)
        }
        return (handle, nil, "pid \(process.pid) still running")
    }
}
