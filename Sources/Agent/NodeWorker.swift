import Controller
import ImagePull
import Logging
import Manifest
import Metrics
import Supervisor
import Synchronization

/// This node's side of the cluster (docs/controller.md, "Contract for node workers"): it
/// registers and heartbeats the node, runs exactly the instances the committed state places
/// here through the supervisor, and reports what happens to them, in batches.
public final class NodeWorker: Sendable {
    let control: any NodeControl
    let supervisor: NodeSupervisor
    let registration: NodeRegistration
    let heartbeatInterval: Duration
    /// Images pulled for this node's instances and their roots.
    let images: NodeImages
    let logger: Logger
    /// Status reports not yet sent, latest per instance.
    private let pending = Mutex<[InstanceID: InstanceStatusReport]>([:])
    /// What was last reported per instance, so that a report that says nothing new (see
    /// ``InstanceStatusReport/isNews(after:)``) is not sent again.
    private let reported = Mutex<[InstanceID: InstanceStatusReport]>([:])
    private let wakeReporter: AsyncStream<Void>.Continuation
    private let reporterWakes: AsyncStream<Void>

    public var nodeName: String { registration.name }
    /// Where instances' key files are written.
    var keyFiles: InstanceKeyFiles { InstanceKeyFiles(supervisorState: supervisor.stateDirectory) }

    /// The worker of this agent's node with its supervisor (whose state is under
    /// `<state>/supervisor`), going to the cluster through `control`.
    static func make(configuration: AgentConfiguration, control: any NodeControl, logger: Logger) throws -> NodeWorker {
        let workerBox = WorkerBox()
        let supervisor = try NodeSupervisor(NodeSupervisor.Configuration(
            stateDirectory: configuration.stateDirectory + "/supervisor", cgroupParent: configuration.cgroupParent,
            eventHandler: { id, event in workerBox.worker?.supervisorEvent(id, event) }, forwardingNice: configuration.forwardingNice))
        if let problem = supervisor.forwardingPriorityError {
            logger.warning("the forwarding thread keeps its nice value", metadata: ["wanted": "\(configuration.forwardingNice)", "error": "\(problem)"])
        }
        let registration = NodeIdentity.registration(
            name: configuration.nodeName, address: configuration.advertiseAddress, labels: configuration.labels, ports: configuration.portRange)
        let images = try NodeImages(
            stateDirectory: configuration.stateDirectory, access: configuration.registryAccess, grace: configuration.imageGracePeriod, logger: logger)
        let worker = NodeWorker(
            control: control, supervisor: supervisor, registration: registration, heartbeatInterval: configuration.heartbeatInterval,
            images: images, logger: logger)
        workerBox.worker = worker
        supervisor.upstreams.onEjection { ejection in
            Counter(label: "flotilla_upstream_ejections_total", dimensions: [("upstream", ejection.service)]).increment()
            logger.warning("upstream instance ejected", metadata: [
                "upstream": "\(ejection.service)", "instance": "\(ejection.instanceID)", "address": "\(ejection.address)",
                "failures": "\(ejection.failures)", "error": "\(ejection.error)",
            ])
        }
        return worker
    }

    init(control: any NodeControl, supervisor: NodeSupervisor, registration: NodeRegistration, heartbeatInterval: Duration, images: NodeImages,
         logger: Logger) {
        self.control = control
        self.supervisor = supervisor
        self.registration = registration
        self.heartbeatInterval = heartbeatInterval
        self.images = images
        self.logger = logger
        (reporterWakes, wakeReporter) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// Called by the supervisor (on its event loop) for every instance event.
    func supervisorEvent(_ instanceID: String, _ event: SupervisorEvent) {
        switch event.kind {
        case .launched: Counter(label: "flotilla_supervisor_launches_total").increment()
        case .restartScheduled: Counter(label: "flotilla_supervisor_restarts_total").increment()
        case .healthy, .unhealthy: Counter(label: "flotilla_supervisor_health_changes_total", dimensions: [("result", event.kind.rawValue)]).increment()
        default: break
        }
        guard let instance = supervisor.instance(instanceID) else { return }
        Task {
            let status = await instance.status()
            self.enqueue(Self.report(instanceID, status, event: event))
        }
    }

    /// Runs until cancelled: registration, heartbeats, reconciling instances and reporting.
    /// Registration comes first in the heartbeat loop only: the node keeps running what its
    /// copy of the state says while no leader answers (a client restarted during a loss of
    /// every server).
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await self.register()
                await self.heartbeatLoop()
            }
            group.addTask { await self.reportLoop() }
            group.addTask { await self.reconcileLoop() }
            group.addTask { await self.imageCollectionLoop() }
            await group.waitForAll()
        }
    }

    private func register() async {
        while !Task.isCancelled {
            do {
                try await control.register(registration)
                logger.info("node registered", metadata: ["node": "\(registration.name)", "cpus": "\(registration.attributes.cpus)"])
                return
            } catch {
                logger.warning("could not register the node; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func heartbeatLoop() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: heartbeatInterval)
            } catch {
                return
            }
            do {
                if try await control.heartbeat(node: registration.name) == false { await register() }
            } catch {
                logger.debug("heartbeat not delivered", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Collects unused images now and then; the grace period, not this pace, decides how long
    /// an unused image stays.
    private func imageCollectionLoop() async {
        while !Task.isCancelled {
            await images.collectOffThePool { [self] in
                Set(supervisor.recordedInstanceIDs()).union(operations.withLock { Set($0.keys) })
            }
            do {
                try await Task.sleep(for: Self.imageCollectionInterval(grace: images.grace))
            } catch {
                return
            }
        }
    }

    /// Every minute, or twice per grace period when that is shorter, so that an image goes
    /// within about one and a half grace periods of its last use.
    static func imageCollectionInterval(grace: Duration) -> Duration {
        min(.seconds(60), max(.milliseconds(500), grace / 2))
    }

    // MARK: Reconciling

    private func reconcileLoop() async {
        var seen: UInt64 = 0
        while !Task.isCancelled {
            await reconcileOnce()
            seen = await control.waitForChange(after: seen, timeout: .seconds(5))
        }
    }

    /// Brings the supervisor in line with the committed state without waiting for it: every stop
    /// and start runs as its own task, so that one instance taking its full stop timeout (a pid 1
    /// that ignores SIGTERM waits 10 s for the kill) holds up neither the other stops nor the
    /// starts of a new revision. A start waits only for the stops of instances on this node that
    /// hold one of its port numbers (a replacement may take its predecessor's port).
    func reconcileOnce() async {
        guard let work = await control.work(of: registration.name) else { return }
        let (mine, services, keyValues) = (work.instances, work.services, work.keyValues)
        // The cluster marked these lost while it could not hear this node, which still runs
        // them: say again how they are, even if that was said before.
        for instance in mine where instance.status == .lost && instance.desiredState == .run {
            guard let supervised = supervisor.instance(instance.id) else { continue }
            reported.withLock { _ = $0.removeValue(forKey: instance.id) }
            Task { self.enqueue(Self.report(instance.id, await supervised.status(), event: nil)) }
        }
        let wanted = Set(mine.filter { $0.desiredState == .run && !$0.status.isTerminal }.map(\.id))
        let known = Set(mine.map(\.id))
        let stopping = mine.filter { $0.desiredState == .stop && $0.status != .stopped }
        for instance in stopping {
            let reason = instance.stopReason ?? "told to stop"
            begin(.stop, instance.id) { await self.stop(instance.id, reason: reason, drain: instance.drainDelay) }
        }
        // Processes the state no longer lists at all (e.g. left by a previous agent).
        for id in supervisor.recordedInstanceIDs() where !known.contains(id) {
            begin(.stop, id) {
                await self.supervisor.remove(id)
                self.keyFiles.remove(instance: id)
                await self.images.release(instance: id)
            }
        }
        for instance in mine where wanted.contains(instance.id) && supervisor.instance(instance.id) == nil {
            guard let service = services[instance.id] else { continue }
            let ports = Set(instance.ports.map(\.number))
            let predecessors = stopping.filter { !ports.isDisjoint(with: $0.ports.map(\.number)) }.map(\.id)
            begin(.start, instance.id) {
                for id in predecessors { await self.operation(on: id)?.value }
                await self.start(instance, service, keyValues: keyValues)
            }
        }
    }

    /// What a task under way does to its instance.
    enum Operation: Sendable { case start, stop }

    /// The start or stop under way per instance.
    private let operations = Mutex<[InstanceID: (kind: Operation, task: Task<Void, Never>)]>([:])

    /// Runs `body` for the instance unless the same operation is already under way; an operation
    /// of the other kind runs after the one under way (a stop never overtakes its start).
    private func begin(_ kind: Operation, _ id: InstanceID, _ body: @escaping @Sendable () async -> Void) {
        operations.withLock { operations in
            let previous = operations[id]
            if previous?.kind == kind { return }
            // The lock is held until the entry is in place, so the task's own removal comes after it.
            let task = Task {
                await previous?.task.value
                await body()
                self.operations.withLock { operations in
                    if operations[id]?.kind == kind { operations[id] = nil }
                }
            }
            operations[id] = (kind, task)
        }
    }

    /// The task under way for the instance, if any.
    private func operation(on id: InstanceID) -> Task<Void, Never>? {
        operations.withLock { $0[id]?.task }
    }

    private func start(_ instance: InstanceRecord, _ service: Service, keyValues: [String: [UInt8]]) async {
        var ports: [String: Int] = [:]
        for port in instance.ports { ports[port.name] = port.number }
        let bound: (service: Service, environment: [String: String])
        do {
            bound = try keyFiles.apply(service, instance: instance.id, values: keyValues)
        } catch {
            enqueue(InstanceStatusReport(id: instance.id, status: .failed, exit: nil, message: "could not start: \(error)"))
            return
        }
        let service = bound.service
        var image: ImageRootfs?
        if let name = service.image {
            do {
                image = try await images.prepare(instance: instance.id, image: name, progress: pullReporter(instance.id, name))
            } catch {
                logger.error("could not make an instance's root from its image", metadata: ["instance": "\(instance.id)", "error": "\(error)"])
                await images.release(instance: instance.id)
                enqueue(InstanceStatusReport(id: instance.id, status: .failed, exit: nil, message: "could not start: \(error)"))
                return
            }
        }
        let facts = InstanceFacts(
            instanceID: instance.id, assignedPorts: ports,
            environment: bound.environment.merging([
                "FLOTILLA_INSTANCE": instance.id, "FLOTILLA_SERVICE": service.name, "FLOTILLA_APPLICATION": instance.service.application,
                "FLOTILLA_NODE": registration.name,
            ]) { $1 },
            image: image)
        let begin = ContinuousClock.now
        do {
            let supervised = try await supervisor.supervise(SupervisedService(service: service, instance: facts))
            Metrics.Timer(label: "flotilla_supervisor_spawn_duration_seconds").record(duration: ContinuousClock.now - begin)
            let status = await supervised.status()
            enqueue(Self.report(instance.id, status, event: nil))
        } catch {
            await images.release(instance: instance.id)
            logger.error("could not start an instance", metadata: ["instance": "\(instance.id)", "error": "\(error)"])
            enqueue(InstanceStatusReport(id: instance.id, status: .failed, exit: nil, message: "could not start: \(error)"))
        }
    }

    /// Reports an instance's pull as its status message, at most once a second and at each
    /// change of phase: every report is a log entry.
    private func pullReporter(_ id: InstanceID, _ image: ImageName) -> @Sendable (PullProgress) -> Void {
        let last = Mutex<(at: ContinuousClock.Instant, phase: String)?>(nil)
        return { progress in
            let now = ContinuousClock.now
            let phase = "\(progress.phase)"
            let due = last.withLock { last in
                guard last == nil || last!.phase != phase || now - last!.at >= .seconds(1) else { return false }
                last = (now, phase)
                return true
            }
            guard due else { return }
            self.enqueue(InstanceStatusReport(id: id, status: .starting, exit: nil, message: "pulling \(image): \(progress)"))
        }
    }

    /// Stops an instance, `drain` after its deregistration (the entry that told it to stop)
    /// so that clients, DNS caches and proxies stop sending to it before its stop signal.
    private func stop(_ id: InstanceID, reason: String, drain: Duration? = nil) async {
        if supervisor.instance(id) != nil || supervisor.recordedInstanceIDs().contains(id) {
            if let drain, supervisor.instance(id) != nil {
                logger.info("draining a deregistered instance before its stop signal", metadata: ["instance": "\(id)", "delay": "\(DurationText.format(drain))"])
                try? await Task.sleep(for: drain)
            }
            await supervisor.remove(id)
        }
        keyFiles.remove(instance: id)
        await images.release(instance: id)
        enqueue(InstanceStatusReport(id: id, status: .stopped, exit: nil, message: reason))
    }

    // MARK: Reporting

    /// How long the reporter waits for more changes before it sends.
    static let reportBatchingDelay = Duration.milliseconds(10)

    private func enqueue(_ report: InstanceStatusReport) {
        let changed = reported.withLock { reported in
            guard report.isNews(after: reported[report.id]) else { return false }
            reported[report.id] = report
            return true
        }
        guard changed else { return }
        pending.withLock { $0[report.id] = report }
        wakeReporter.yield()
    }

    /// Sends what is pending in one entry, after a short pause that lets changes arriving
    /// together (a batch of launches, a node's worth of health results) share it: a node with
    /// many instances changing at once costs the log one entry, not one per instance.
    private func reportLoop() async {
        for await _ in reporterWakes {
            try? await Task.sleep(for: Self.reportBatchingDelay)
            let batch = pending.withLock { pending in
                defer { pending = [:] }
                return pending.values.sorted { $0.id < $1.id }
            }
            guard !batch.isEmpty else { continue }
            do {
                try await control.report(node: registration.name, batch)
            } catch {
                // Put them back (unless newer ones came) and try again.
                pending.withLock { pending in
                    for report in batch where pending[report.id] == nil { pending[report.id] = report }
                }
                logger.warning("could not report instance status; retrying", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .milliseconds(500))
                wakeReporter.yield()
            }
        }
    }

    /// The cluster's status for what the supervisor sees: the status word, and the main pid,
    /// restart count and last exit that operators look for first. `exit` is set only once the
    /// instance has ended; a restarted process's exit is `lastExit`.
    static func report(_ id: InstanceID, _ status: SupervisedStatus, event: SupervisorEvent?) -> InstanceStatusReport {
        let lastExit = status.lastExit.map(exitInfo)
        var message = event.map { $0.reason.isEmpty ? $0.kind.rawValue : "\($0.kind.rawValue): \($0.reason)" } ?? ""
        let cluster: Controller.InstanceStatus
        var exit: Controller.ExitInfo?
        switch status.phase {
        case .idle, .starting, .backingOff:
            cluster = .starting
        case .running, .stopping:
            if let health = status.health {
                cluster = health == .healthy ? .healthy : health == .unhealthy ? .unhealthy : .running
            } else {
                cluster = status.isReady ? .running : .starting
            }
        case .stopped:
            (cluster, exit) = (.stopped, lastExit)
        case .failed(let reason):
            (cluster, exit, message) = (.failed, lastExit, reason)
        case .completed:
            (cluster, exit) = (.completed, lastExit)
        }
        return InstanceStatusReport(
            id: id, status: cluster, exit: exit, message: message, mainPID: status.pid, restartCount: status.restartCount,
            lastExit: lastExit)
    }

    static func exitInfo(_ reason: ExitReason) -> Controller.ExitInfo {
        switch reason {
        case .exited(let code): Controller.ExitInfo(code: code)
        case .signaled(let signal): Controller.ExitInfo(signal: signal)
        case .oomKilled: Controller.ExitInfo(signal: 9, oomKilled: true)
        default: Controller.ExitInfo()
        }
    }
}

/// Lets the supervisor's event handler reach the worker built after it.
final class WorkerBox: @unchecked Sendable {
    // Written once in `NodeWorker.make`, before the supervisor delivers any event.
    var worker: NodeWorker?
}
