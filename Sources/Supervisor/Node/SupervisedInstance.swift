import CSpawn
import Glibc
import Manifest
import NIOCore
import Synchronization

/// The driver of one instance: it feeds `InstanceStateMachine` the clock, exits, check results
/// and notify messages, and carries out the actions it returns (launch, signal, kill, probe,
/// persist). Every input is handled on the node's event loop, one at a time, so the machine
/// needs no other synchronisation; the lock only guards against readers on other threads.
public final class SupervisedInstance: Sendable {
    /// The instance's id.
    public let instanceID: String
    /// Its service's name.
    public let serviceName: String
    /// Its output.
    public let log: InstanceLog
    /// Its state directory.
    public let directory: String
    let service: SupervisedService
    let context: NodeContext
    private let state: Mutex<State>

    struct State {
        var machine: InstanceStateMachine<SeededGenerator>
        var handle: InstanceHandle?
        var process: ProcessIdentity?
        /// The process's own network namespace and published ports (`private` network mode).
        var namespace: NetworkNamespace?
        var publisher: PortPublisher?
        /// The local ports of its upstreams.
        var upstreams: InstanceUpstreams?
        var adopted = false
        var notify: NotifySocket?
        var timer: Scheduled<Void>?
        var timerDeadline: BootInstant?
        var dirty = false
        var detached = false
        var events: [InstanceEvent] = []
        var lastCheck: ProbeOutcome?
        var waiters: [Waiter] = []
        /// A launch runs off the loop (see `launchProcess`).
        var launching = false
        /// Who waits for that launch to finish.
        var launchWaiters: [EventLoopPromise<Void>] = []
    }

    struct Waiter {
        var predicate: @Sendable (InstanceStatus) -> Bool
        var promise: EventLoopPromise<InstanceStatus>
    }

    /// Events kept in memory and in the state file.
    static let eventsKept = 200

    init(service: SupervisedService, directory: String, log: InstanceLog, context: NodeContext,
         machine: InstanceStateMachine<SeededGenerator>, events: [InstanceEvent])
    {
        instanceID = service.instanceID
        serviceName = service.serviceName
        self.service = service
        self.directory = directory
        self.log = log
        self.context = context
        state = Mutex(State(machine: machine, events: events))
    }

    var loop: EventLoop { context.loop }

    /// Binds the notify socket (not in init: its handler refers to the instance weakly).
    func attachNotifySocket() throws(SystemCallError) {
        let sender = NotifySocket.ExpectedSender(unifiedDirectory: context.cgroup(of: instanceID).unifiedPath,
                                                 relativePath: context.relativeCgroupPath(instanceID))
        let socket = try NotifySocket(directory: directory + "/notify", sender: sender, watcher: context.control) {
            [weak self] delivery in
            guard let self else { return }
            self.loop.execute { self.notifyReceived(delivery) }
        }
        state.withLock { $0.notify = socket }
    }

    // MARK: - Public API

    /// The instance now.
    public func status() async -> InstanceStatus {
        state.withLock { Self.status(of: $0, id: instanceID) }
    }

    /// Its events, oldest first (the last 200).
    public func events() -> [InstanceEvent] {
        state.withLock { $0.events }
    }

    /// Returns once `predicate` holds for the instance's status, or throws after `timeout`.
    public func wait(timeout: Duration, until predicate: @escaping @Sendable (InstanceStatus) -> Bool) async throws
        -> InstanceStatus
    {
        let promise = loop.makePromise(of: InstanceStatus.self)
        loop.execute {
            let now = self.state.withLock { Self.status(of: $0, id: self.instanceID) }
            if predicate(now) {
                promise.succeed(now)
                return
            }
            self.state.withLock { $0.waiters.append(Waiter(predicate: predicate, promise: promise)) }
        }
        let timer = loop.scheduleTask(in: .nanoseconds(timeout.nanosecondsClamped)) {
            promise.fail(WaitTimeout(instanceID: self.instanceID, timeout: timeout, lastEvents: Array(self.events().suffix(8))))
        }
        defer { timer.cancel() }
        // A wait given up (timed out, cancelled) leaves no waiter behind: each would be kept,
        // and its predicate run at every change, for the instance's whole life.
        promise.futureResult.whenFailure { _ in
            self.state.withLock { $0.waiters.removeAll { $0.promise.futureResult === promise.futureResult } }
        }
        return try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            promise.fail(CancellationError())
        }
    }

    /// Waits not yet satisfied, failed or given up.
    var pendingWaits: Int { state.withLock { $0.waiters.count } }

    /// Stops the instance for good (stop signal, then its cgroup is killed after the stop
    /// timeout; a pending restart is cancelled) and returns once it has ended.
    public func stop() async -> InstanceStatus {
        requestStop()
        return (try? await wait(timeout: .seconds(3600)) { $0.isFinished })
            ?? state.withLock { Self.status(of: $0, id: instanceID) }
    }

    /// Asks the instance to stop for good, as `stop()` does, without waiting for it to end
    /// (`systemctl stop --no-block`). The request is queued on the instance's event loop at
    /// once; it needs no task to run.
    public func requestStop() {
        loop.execute { self.input { machine, now in machine.stop(now: now) } }
    }

    /// Starting a wait that did not end in time.
    public struct WaitTimeout: Error, CustomStringConvertible {
        public var instanceID: String
        public var timeout: Duration
        /// The instance's last events when the wait gave up.
        public var lastEvents: [InstanceEvent] = []
        public var description: String {
            "instance \(instanceID): condition not reached within \(DurationText.formatRounded(timeout)); last events: "
                + lastEvents.map(\.description).joined(separator: "; ")
        }
    }

    static func status(of state: State, id: String) -> InstanceStatus {
        let machine = state.machine
        return InstanceStatus(
            instanceID: id, phase: machine.phase, pid: state.handle?.pid, isReady: machine.isReady,
            health: machine.health?.status, statusText: machine.readiness?.statusText, launchCount: machine.launchCount,
            restartCount: machine.restart.restartCount, lastExit: machine.lastExit, adopted: state.adopted,
            lastCheck: state.lastCheck, consecutiveCheckFailures: machine.health?.consecutiveFailures ?? 0)
    }

    // MARK: - Inputs (on the loop)

    /// Feeds one input to the machine and carries out what it returns.
    func input(_ step: (inout InstanceStateMachine<SeededGenerator>, BootInstant) -> [InstanceAction]) {
        loop.preconditionInEventLoop()
        let now = BootInstant.now()
        let actions = state.withLock { state -> [InstanceAction] in
            guard !state.detached else { return [] }
            return step(&state.machine, now)
        }
        perform(actions, now: now)
        settle()
    }

    private func perform(_ actions: [InstanceAction], now: BootInstant) {
        for action in actions {
            switch action {
            case .launch: launchProcess()
            case .persist: state.withLock { $0.dirty = true }
            case .signal(let signal):
                guard let handle = state.withLock({ $0.handle }) else { continue }
                let discarded = handle.discards(signal)
                try? handle.signal(signal)
                if discarded { loop.execute { self.input { machine, now in machine.stopSignalDiscarded(now: now) } } }
            case .killCgroup:
                guard let handle = state.withLock({ $0.handle }) else { continue }
                do {
                    try handle.kill()
                } catch {
                    // In this same input, not queued: an exit queued meanwhile would otherwise
                    // come first and the failure go unrecorded, or a later stop inherit it.
                    let more = state.withLock { $0.detached ? [] : $0.machine.killFailed(now: now, detail: "\(error)") }
                    perform(more, now: now)
                }
            case .runHealthCheck(let timeout): runHealthCheck(timeout: timeout)
            }
        }
    }

    /// After an input: record events, write the state file if it changed, set the timer for the
    /// machine's next deadline, wake waiters.
    private func settle() {
        let (record, deadline, events, satisfied) = state.withLock { state in
            let events = state.machine.takeEvents()
            state.events += events
            if state.events.count > Self.eventsKept { state.events.removeFirst(state.events.count - Self.eventsKept) }
            var record: InstanceRecord?
            if state.dirty {
                state.dirty = false
                record = InstanceRecord(serviceName: serviceName, instanceID: instanceID, bootID: context.bootID,
                                        process: state.process, machine: state.machine.snapshot, events: state.events)
            }
            let status = Self.status(of: state, id: instanceID)
            var satisfied: [(EventLoopPromise<InstanceStatus>, InstanceStatus)] = []
            state.waiters.removeAll { waiter in
                guard waiter.predicate(status) else { return false }
                satisfied.append((waiter.promise, status))
                return true
            }
            return (record, state.detached ? nil : state.machine.nextDeadline, events, satisfied)
        }
        if let record { context.writer.submit(to: directory + "/" + InstanceRecord.fileName) { record.encoded() } }
        for event in events { context.eventHandler?(instanceID, event) }
        schedule(deadline)
        for (promise, status) in satisfied { promise.succeed(status) }
    }

    private func schedule(_ deadline: BootInstant?) {
        let previous = state.withLock { state -> Scheduled<Void>? in
            guard state.timerDeadline != deadline else { return nil }
            defer {
                state.timer = nil
                state.timerDeadline = nil
            }
            return state.timer
        }
        previous?.cancel()
        guard let deadline, state.withLock({ $0.timer == nil }) else { return }
        let delay = max(deadline - BootInstant.now(), .zero)
        let timer = loop.scheduleTask(deadline: Self.coalesced(.now() + .nanoseconds(delay.nanosecondsClamped), delay: delay)) {
            [weak self] in
            guard let self else { return }
            self.state.withLock {
                $0.timer = nil
                $0.timerDeadline = nil
            }
            self.input { machine, now in machine.tick(now: now) }
        }
        state.withLock {
            $0.timer = timer
            $0.timerDeadline = deadline
        }
    }

    /// Timer slack, as the kernel's round_jiffies does: a deadline at least a second away is
    /// rounded up to the next 100 ms boundary (10 ms for one at least 100 ms away), so that the
    /// timers of many instances (a thousand health checks every 10 s) fire together and wake the
    /// event loop a few times a second rather than a hundred.
    static func coalesced(_ deadline: NIODeadline, delay: Duration) -> NIODeadline {
        let granularity: UInt64
        if delay >= .seconds(1) {
            granularity = 100_000_000
        } else if delay >= .milliseconds(100) {
            granularity = 10_000_000
        } else {
            return deadline
        }
        let nanoseconds = deadline.uptimeNanoseconds
        return .uptimeNanoseconds((nanoseconds + granularity - 1) / granularity * granularity)
    }

    // MARK: - Actions

    /// A launch that failed before anything was started, reported on a later turn of the loop:
    /// reported at once, with no restart delay (`initialDelay: 0s`) the relaunch it leads to would
    /// fail inside it again, one stack frame deeper each time, up to `maxRestarts` deep.
    private func failLaunch(_ message: String) {
        loop.execute { self.input { machine, now in machine.launchFailed(now: now, message: message) } }
    }

    /// Launches off the event loop: `fl_spawn` returns only once the child has set up its
    /// namespaces and called execve (so that a failure is exact), a few milliseconds during which
    /// the loop keeps serving the other instances and launches of a batch overlap. The machine
    /// stays `starting` meanwhile; a stop asked for then is honoured when `launched` arrives.
    private func launchProcess() {
        var spec = service.launch
        // Bound before the launch: a port in use fails it, with nothing started.
        let publisher: PortPublisher?
        do {
            publisher = try bindPublishedPorts()
        } catch {
            failLaunch("\(error)")
            return
        }
        let hostUpstreams: InstanceUpstreams?
        do {
            hostUpstreams = try attachHostUpstreams()
        } catch {
            publisher?.close()
            failLaunch("\(error)")
            return
        }
        let output: (stdout: Int32, stderr: Int32)
        do {
            output = try log.openForLaunch()
        } catch {
            publisher?.close()
            hostUpstreams?.close()
            failLaunch("log pipes: \(error)")
            return
        }
        spec.standardOutput = .fileDescriptor(output.stdout)
        spec.standardError = .fileDescriptor(output.stderr)
        state.withLock { $0.launching = true }
        context.launches.submit { [self, spec] work in
            guard case .active = work else {
                // The pool is shutting down (the supervisor detaches): nothing was started.
                close(output.stdout)
                close(output.stderr)
                let error = SystemCallError(call: "launch", path: nil, errno: ECANCELED)
                let network = PreparedNetwork(publisher: publisher, upstreams: hostUpstreams)
                loop.execute { self.launchFinished(.failure(.launch(stage: .clone3, error)), network: network) }
                return
            }
            context.removeLeftoverCgroup(instanceID)
            let inside = PreparedInside()
            let result = Result { () throws(SpawnError) in
                try context.supervisor.launch(spec, prepare: prepareNamespace(into: inside))
            }
            close(output.stdout)
            close(output.stderr)
            var network = PreparedNetwork(publisher: publisher, upstreams: hostUpstreams)
            if let (namespace, upstreams) = inside.take() {
                network.namespace = namespace
                network.upstreams = upstreams
            }
            let prepared = network
            loop.execute { self.launchFinished(result, network: prepared) }
        }
    }

    /// What is made for the new process's network before it runs: its published ports, its
    /// upstreams' local ports, and (`private` mode, with upstreams) its namespace, opened while
    /// the child waits to be released.
    struct PreparedNetwork: Sendable {
        var publisher: PortPublisher?
        var upstreams: InstanceUpstreams?
        var namespace: NetworkNamespace?

        func close() {
            publisher?.close()
            upstreams?.close()
        }
    }

    /// The launch's `prepare` step for a `private`-network service with upstreams: their
    /// listeners, bound inside the new namespace before the service's first instruction, on
    /// this launch thread.
    private func prepareNamespace(into inside: PreparedInside) -> ((pid_t, Int32) throws(SpawnError) -> Void)? {
        guard service.hasPrivateNetwork, !service.upstreams.isEmpty else { return nil }
        return { [service, context] pid, pidFD throws(SpawnError) in
            let namespace: NetworkNamespace
            do {
                namespace = try NetworkNamespace(pid: pid, pidFD: pidFD)
            } catch {
                throw .preparation("upstreams: \(error)")
            }
            do throws(UpstreamBindFailure) {
                let upstreams = try InstanceUpstreams.bind(service.upstreams, in: namespace, dialer: context.dialer, directory: context.upstreams)
                inside.set(namespace: namespace, upstreams: upstreams)
            } catch {
                throw .preparation(error.description)
            }
        }
    }

    private func launchFinished(_ result: Result<InstanceHandle, SpawnError>, network: PreparedNetwork) {
        let waiters = state.withLock { state in
            defer {
                state.launching = false
                state.launchWaiters = []
            }
            return state.launchWaiters
        }
        defer { for waiter in waiters { waiter.succeed() } }
        let handle: InstanceHandle
        switch result {
        case .success(let launched):
            handle = launched
        case .failure(let error):
            network.close()
            input { machine, now in machine.launchFailed(now: now, message: "\(error)") }
            return
        }
        let identity = ProcessIdentity(pid: handle.pid, startTimeTicks: ProcessStat.read(handle.pid)?.startTimeTicks ?? 0)
        state.withLock { state in
            state.handle = handle
            state.process = identity
            state.adopted = false
        }
        attachNetwork(handle, network: network)
        watchExit(handle)
        input { machine, now in machine.launched(now: now, detail: "pid \(handle.pid)", cgroupID: handle.cgroupID) }
    }

    /// The listeners of the instance's published ports (`private` network mode), or nil.
    private func bindPublishedPorts() throws(PortPublisher.BindFailure) -> PortPublisher? {
        guard service.hasPrivateNetwork, !service.ports.isEmpty else { return nil }
        return try PortPublisher.bind(service.ports, address: context.publishAddress)
    }

    /// The node's listeners of a `host`-mode service's upstreams (joined, or opened), or nil.
    private func attachHostUpstreams() throws(UpstreamBindFailure) -> InstanceUpstreams? {
        guard !service.hasPrivateNetwork, !service.upstreams.isEmpty else { return nil }
        return try InstanceUpstreams.attachHost(service.upstreams, serviceName: serviceName, directory: context.upstreams)
    }

    /// Opens the new process's network namespace (unless the launch did) and forwards the
    /// published ports into it; serves its upstreams' local ports. A process that is gone
    /// already has no namespace to open: its exit is on its way.
    private func attachNetwork(_ handle: InstanceHandle, network: PreparedNetwork) {
        var namespace: NetworkNamespace?
        if service.hasPrivateNetwork {
            namespace = network.namespace ?? (try? NetworkNamespace(of: handle))
            guard namespace != nil else {
                network.close()
                return
            }
        }
        let current = state.withLock { state -> Bool in
            guard state.handle === handle else { return false }
            state.namespace = namespace
            state.publisher = network.publisher
            state.upstreams = network.upstreams
            return true
        }
        guard current else {
            network.close()
            return
        }
        if let namespace {
            network.publisher?.serve(into: namespace, group: context.proxyGroup, dialer: context.dialer, watcher: context.control)
        }
        network.upstreams?.serve(caller: instanceID)
    }

    /// Stops forwarding into the namespace of a process that has ended (or is left to the next
    /// agent), closing the listeners and every forwarded connection, and leaves its upstreams.
    private func detachNetwork() {
        let (publisher, upstreams) = state.withLock { state -> (PortPublisher?, InstanceUpstreams?) in
            defer {
                state.namespace = nil
                state.publisher = nil
                state.upstreams = nil
            }
            return (state.publisher, state.upstreams)
        }
        publisher?.close()
        upstreams?.close()
    }

    /// An adopted `private`-network process's upstreams: the previous agent's listeners died
    /// with it; new ones are bound inside the namespace on a launch thread (it enters the
    /// namespace), then served if the process is still the current one.
    private func attachAdoptedUpstreams(_ handle: InstanceHandle) {
        guard service.hasPrivateNetwork, !service.upstreams.isEmpty,
              let namespace = state.withLock({ $0.handle === handle ? $0.namespace : nil })
        else { return }
        context.launches.submit { [self] work in
            guard case .active = work else { return }
            let result = Result { () throws(UpstreamBindFailure) in
                try InstanceUpstreams.bind(service.upstreams, in: namespace, dialer: context.dialer, directory: context.upstreams)
            }
            loop.execute { [self] in
                switch result {
                case .success(let upstreams):
                    let current = state.withLock { state -> Bool in
                        guard state.handle === handle, state.upstreams == nil else { return false }
                        state.upstreams = upstreams
                        return true
                    }
                    if current { upstreams.serve(caller: instanceID) } else { upstreams.close() }
                case .failure(let error):
                    input { machine, now in
                        machine.publishFailed(now: now, detail: error.description)
                        return []
                    }
                }
            }
        }
    }

    private func watchExit(_ handle: InstanceHandle) {
        handle.whenExited { exit in
            // A detached instance belongs to the next agent (the loop may be gone already).
            guard !self.state.withLock({ $0.detached }) else { return }
            self.loop.execute { self.processExited(handle, exit) }
        }
    }

    private func processExited(_ handle: InstanceHandle, _ exit: InstanceExit) {
        let current = state.withLock { state -> Bool in
            guard state.handle === handle else { return false }
            state.handle = nil
            state.process = nil
            state.adopted = false
            return true
        }
        guard current else { return }
        detachNetwork()
        log.finish()
        let reason = ExitReason(exit)
        input { machine, now in machine.exited(now: now, reason: reason) }
    }

    private func notifyReceived(_ delivery: NotifySocket.Delivery) {
        switch delivery {
        case .accepted(let message, let senderCgroup):
            input { machine, now in machine.notified(now: now, message: message, senderCgroup: senderCgroup) }
        case .refused(let why):
            input { machine, now in
                machine.notifyRefused(now: now, detail: why)
                return []
            }
        }
    }

    private func runHealthCheck(timeout: Duration) {
        guard let check = service.policy.health, let handle = state.withLock({ $0.handle }) else { return }
        let future: EventLoopFuture<ProbeOutcome>
        let inside = probeNamespace()
        switch check.probe {
        case .http(let http):
            if let unavailable = networkProbeUnavailable(port: http.port, inside: inside) {
                future = loop.makeSucceededFuture(unavailable)
                break
            }
            future = NetworkProbe.http(on: loop, watcher: context.control, port: service.ports[http.port] ?? 0, path: http.path,
                                       accepted: http.status, timeout: timeout, inside: inside)
        case .tcp(let tcp):
            if let unavailable = networkProbeUnavailable(port: tcp.port, inside: inside) {
                future = loop.makeSucceededFuture(unavailable)
                break
            }
            future = NetworkProbe.tcp(on: loop, watcher: context.control, port: service.ports[tcp.port] ?? 0, timeout: timeout,
                                      inside: inside)
        case .exec(let exec):
            future = ExecProbe.run(exec.command, like: service.launch, in: handle, supervisor: context.supervisor,
                                   watcher: context.control, launches: context.checkLaunches, loop: loop, timeout: timeout)
        }
        future.hop(to: loop).whenSuccess { outcome in
            let current = self.state.withLock { state -> Bool in
                guard state.handle === handle else { return false }
                state.lastCheck = outcome
                return true
            }
            guard current else { return }
            self.input { machine, now in machine.healthCheckCompleted(now: now, passed: outcome.passed, detail: outcome.detail) }
        }
    }

    /// Where HTTP and TCP checks connect: inside the process's own namespace, if it has one.
    private func probeNamespace() -> (NetworkNamespace, NamespaceDialer)? {
        state.withLock { $0.namespace }.map { ($0, context.dialer) }
    }

    /// Why an HTTP or TCP check cannot run, if it cannot: no such port, or a private network
    /// whose namespace is gone. Never the node's loopback for an instance with a namespace of its
    /// own: a service of the node listening on the same port would pass the check in its place.
    private func networkProbeUnavailable(port name: String, inside: (NetworkNamespace, NamespaceDialer)?) -> ProbeOutcome? {
        if service.ports[name] == nil { return ProbeOutcome(passed: false, detail: "no port named \(name)") }
        if service.hasPrivateNetwork && inside == nil {
            return ProbeOutcome(passed: false, detail: "the instance's network namespace is gone")
        }
        return nil
    }

    // MARK: - Start, adoption, detaching

    /// Starts a new instance and returns once its launch has run, whether it succeeded or not.
    func start() async throws {
        let promise = loop.makePromise(of: Void.self)
        loop.execute {
            self.input { machine, now in machine.start(now: now) }
            let launching = self.state.withLock { state in
                if state.launching { state.launchWaiters.append(promise) }
                return state.launching
            }
            if !launching { promise.succeed() }
        }
        try await promise.futureResult.get()
    }

    /// Takes over a running process found by `NodeSupervisor` (alive: `handle`), or learns that
    /// it ended while no supervisor watched (`exit`).
    func adopt(handle: InstanceHandle?, identity: ProcessIdentity?, exit: ExitReason?, detail: String) {
        state.withLock { state in
            state.handle = handle
            state.process = handle == nil ? nil : identity
            state.adopted = handle != nil
        }
        var publishFailure: String?
        if let handle {
            try? log.attachReaders()
            var network = PreparedNetwork()
            do {
                network.publisher = try bindPublishedPorts()
                network.upstreams = try attachHostUpstreams()
            } catch {
                publishFailure = "\(error)"
            }
            attachNetwork(handle, network: network)
            attachAdoptedUpstreams(handle)
            watchExit(handle)
        }
        let phase = Double(context.nextRandomFraction())
        let cgroupID = handle?.cgroupID
        input { machine, now in machine.adopt(now: now, exit: exit, detail: detail, healthPhase: phase, cgroupID: cgroupID) }
        if let publishFailure {
            input { machine, now in
                machine.publishFailed(now: now, detail: publishFailure)
                return []
            }
        }
    }

    /// Stops driving the instance and leaves its process running (the agent is going away; the
    /// next one adopts it). Output stays queued in the pipes meanwhile.
    func detach() {
        let (timer, record) = state.withLock { state -> (Scheduled<Void>?, InstanceRecord) in
            state.detached = true
            defer { state.timer = nil }
            return (state.timer, InstanceRecord(serviceName: serviceName, instanceID: instanceID, bootID: context.bootID,
                                               process: state.process, machine: state.machine.snapshot,
                                               events: state.events))
        }
        timer?.cancel()
        context.writer.submit(to: directory + "/" + InstanceRecord.fileName) { record.encoded() }
        log.detach()
        detachNetwork()
        state.withLock { $0.notify = nil }
    }
}

/// What the launch's `prepare` step made inside the new namespace, handed back to the launch
/// thread that asked for it.
private final class PreparedInside: Sendable {
    private let made = Mutex<(NetworkNamespace, InstanceUpstreams)?>(nil)

    func set(namespace: NetworkNamespace, upstreams: InstanceUpstreams) {
        made.withLock { $0 = (namespace, upstreams) }
    }

    func take() -> (NetworkNamespace, InstanceUpstreams)? {
        made.withLock { made in
            defer { made = nil }
            return made
        }
    }
}
