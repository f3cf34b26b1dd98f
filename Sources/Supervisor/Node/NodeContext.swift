import Glibc
import NIOCore
import NIOPosix
import Synchronization

/// What every instance driver of a node shares: the launcher, the event loop, the descriptor
/// watchers, the state writer.
final class NodeContext: Sendable {
    let supervisor: Supervisor
    let loop: EventLoop
    /// Notify sockets and exec-check processes.
    let control: DescriptorWatcher
    /// Log pipes.
    let logPump: DescriptorWatcher
    let writer: StateWriter
    /// Where launches run, two at a time, off the event loop (see
    /// `SupervisedInstance.launchProcess`). Threads of their own: a launch blocks until the child
    /// has called execve, and must not hold up the Swift concurrency pool meanwhile.
    let launches = NIOThreadPool(numberOfThreads: 2)
    /// Where exec checks' launches run (`ExecProbe.run`): threads apart from `launches`, since a
    /// check's launch waits up to the check's timeout for an execve that does not come (the
    /// instance's cgroup frozen, a hung filesystem), and two such checks on `launches` would
    /// hold up every instance's start and restart for as long.
    let checkLaunches = NIOThreadPool(numberOfThreads: 2)
    let bootID: String
    let journal: JournalForwarder?
    let eventHandler: (@Sendable (String, InstanceEvent) -> Void)?
    /// `private`-network instances: the proxy's event loops, the thread that makes sockets
    /// inside their namespaces, and the node address their ports are published on.
    let proxyGroup: EventLoopGroup
    let dialer: NamespaceDialer
    let publishAddress: String
    /// The node's local proxy for upstreams.
    let upstreams: UpstreamDirectory
    private let random: Mutex<SeededGenerator>

    init(supervisor: Supervisor, loop: EventLoop, control: DescriptorWatcher, logPump: DescriptorWatcher,
         writer: StateWriter, bootID: String, journal: JournalForwarder?, seed: UInt64,
         eventHandler: (@Sendable (String, InstanceEvent) -> Void)?, proxyGroup: EventLoopGroup, dialer: NamespaceDialer,
         publishAddress: String)
    {
        self.supervisor = supervisor
        self.loop = loop
        self.control = control
        self.logPump = logPump
        self.writer = writer
        self.bootID = bootID
        self.journal = journal
        self.eventHandler = eventHandler
        self.proxyGroup = proxyGroup
        self.dialer = dialer
        self.publishAddress = publishAddress
        upstreams = UpstreamDirectory(group: proxyGroup)
        random = Mutex(SeededGenerator(seed: seed))
        launches.start()
        checkLaunches.start()
    }

    /// A generator for one instance's machine, drawn from the node's seed (one seed replays a
    /// node's jitter).
    func makeGenerator() -> SeededGenerator {
        random.withLock { SeededGenerator(seed: $0.next()) }
    }

    /// A number in 0..<1.
    func nextRandomFraction() -> Double {
        random.withLock { Double.random(in: 0..<1, using: &$0) }
    }

    /// An instance's cgroup path below each hierarchy's root (`/flotilla/web-1`).
    func relativeCgroupPath(_ instanceID: String) -> String {
        "/\(supervisor.cgroups.parentName)/\(instanceID)"
    }

    /// The cgroup an instance has (or would have): the same directories `CgroupTree.beginInstance`
    /// creates.
    func cgroup(of instanceID: String) -> InstanceCgroup {
        let tree = supervisor.cgroups
        return InstanceCgroup(
            unifiedPath: tree.layout.unifiedMount.map { "\($0)/\(tree.parentName)/\(instanceID)" },
            legacyPaths: tree.legacyControllers.mapValues { "\($0)/\(tree.parentName)/\(instanceID)" },
            unifiedRelativePath: tree.layout.unifiedMount.map { _ in "/\(tree.parentName)/\(instanceID)" },
            features: tree.features)
    }

    /// Kills and removes what is left of an instance's cgroup from a process no one supervises
    /// any more (it died while no agent ran, or an agent stopped in the middle of a launch).
    func removeLeftoverCgroup(_ instanceID: String) {
        let cgroup = cgroup(of: instanceID)
        guard cgroup.directories.contains(where: { FileIO.exists($0) }) else { return }
        let deadline = ContinuousClock.now + .seconds(5)
        if (try? cgroup.isPopulated()) == true {
            try? cgroup.kill()
            _ = try? cgroup.waitUntilEmpty(deadline: deadline)
        }
        try? cgroup.remove(deadline: deadline)
    }
}
