import Controller
import Foundation

/// The scheduler alone, in this process, on the state the cluster run builds (the same
/// nodes and manifests): no Raft, no network, no other process on the cores. Shows how much of
/// the cluster's time is planning, and what encoding, decoding and applying the plan entry
/// cost each replica.
enum SchedulerReference {
    static func run(_ options: BenchOptions) throws {
        let applications = SchedulingRun.applications(options)
        let perNode = (options.instances + options.clients - 1) / options.clients
        let capacity = max(1_000, (perNode * 6 / 5 + 1) * SchedulingRun.cpuMillicoresPerInstance)
        var state = ClusterState()
        var index: UInt64 = 0
        let time = Timestamp(unixMilliseconds: unixMilliseconds())
        func apply(_ command: ControllerCommand) throws -> CommandResult {
            index += 1
            let result = state.apply(command, at: index, time: time)
            if let error = result.error { throw UsageError("applying \(command) failed: \(error)") }
            return result
        }
        for number in 0..<options.clients {
            _ = try apply(.registerNode(SimulatedClient.registration(number: number, cpuMillicores: capacity, memoryBytes: 64 << 30)))
        }
        let clock = ContinuousClock()
        print("scheduler, in-process: \(options.clients) nodes, \(applications.count) applications, \(options.instances) instances")

        if options.oneApplicationAtATime {
            var total = Duration.zero
            for application in applications {
                _ = try apply(.applyApplication(manifestJSON: application.json, expectedRevision: nil))
                let start = clock.now
                let plan = Scheduler().schedule(state, for: .all)
                let took = clock.now - start
                total += took
                _ = try apply(.commitPlan(plan))
                print("  \(application.name): \(plan.placements.count) placements planned in \(format(seconds(took), 3)) s "
                    + "(\(format(Double(plan.placements.count) / seconds(took), 0))/s)")
            }
            print(padded("  planning, every application:") + "\(format(seconds(total), 2)) s, \(format(Double(options.instances) / seconds(total), 0)) placements/s")
        } else {
            for application in applications { _ = try apply(.applyApplication(manifestJSON: application.json, expectedRevision: nil)) }
            var start = clock.now
            let plan = Scheduler().schedule(state, for: .all)
            let planning = clock.now - start
            print(padded("  one pass over everything:") + "\(plan.placements.count) placements in \(format(seconds(planning), 2)) s "
                + "= \(format(Double(plan.placements.count) / seconds(planning), 0)) placements/s   (goal >= 10000/s)")
            start = clock.now
            let entry = ControllerEntry(command: .commitPlan(plan), time: time).encoded()
            let encoding = clock.now - start
            print(padded("  plan entry encoded (JSON):") + "\(format(Double(entry.count) / 1_048_576, 2)) MiB in \(format(seconds(encoding), 2)) s "
                + "(\(entry.count / max(1, plan.placements.count)) bytes per placement)")
            start = clock.now
            let decoded = try ControllerEntry.decode(entry)
            let decoding = clock.now - start
            print(padded("  decoded, as every replica does:") + "\(format(seconds(decoding), 2)) s")
            start = clock.now
            index += 1
            let result = state.apply(decoded.command, at: index, time: decoded.time)
            let applying = clock.now - start
            var placed = 0
            if case .planCommitted(let outcome) = result { placed = outcome.placed.count }
            print(padded("  applied to the state:") + "\(placed) placed in \(format(seconds(applying), 2)) s")
            print(padded("  plan + encode + decode + apply:") + "\(format(seconds(planning + encoding + decoding + applying), 2)) s "
                + "= \(format(Double(placed) / seconds(planning + encoding + decoding + applying), 0)) placements/s (no Raft, no network, one replica)")
        }
        // What the leader loop does at every wake-up (each commit, at least every second) once
        // everything is placed: a full reconcile and a plan that places nothing.
        var passes: [(reconcile: Double, place: Double)] = []
        for _ in 0..<3 {
            var start = clock.now
            let decisions = Reconciler.reconcile(state, for: .all)
            let reconciling = seconds(clock.now - start)
            start = clock.now
            let plan = Scheduler().place(decisions, in: state)
            passes.append((reconciling, seconds(clock.now - start)))
            precondition(plan.placements.isEmpty)
        }
        let best = passes.min { $0.reconcile + $0.place < $1.reconcile + $1.place } ?? (0, 0)
        print(padded("  an idle pass with all placed:") + "\(format((best.reconcile + best.place) * 1000, 1)) ms (best of 3: reconcile "
            + "\(format(best.reconcile * 1000, 1)) ms + place \(format(best.place * 1000, 1)) ms): the leader loop's cost per wake-up, on the Raft node's actor")
        var assignmentTimes: [Double] = []
        for number in [0, options.clients / 2, options.clients - 1] {
            let start = clock.now
            let assignment = state.assignment(for: SimulatedClient.nodeName(number))
            assignmentTimes.append(seconds(clock.now - start))
            _ = assignment.instances.count
        }
        print(padded("  one node's assignment (a watch):") + "\(format((assignmentTimes.min() ?? 0) * 1000, 2)) ms to compute "
            + "(ClusterState.assignment(for:), before its JSON and digest)")
    }
}
