import Foundation
import TestSupport
import Testing

/// Runs the simulation over many seeds. `RAFT_SIM_SEEDS=N` sets how many (default 2,000,
/// what CI runs); `RAFT_SIM_SEED=S` replays one seed, printing every event with
/// `RAFT_SIM_TRACE=1`; `RAFT_SIM_FIRST_SEED=F` explores seeds from F on.
@Suite struct SimulationTests {
    static let environment = ProcessInfo.processInfo.environment
    static let seedsPerBatch: UInt64 = 25
    static let replaySeed = environment["RAFT_SIM_SEED"].flatMap(UInt64.init)
    static let firstSeed = environment["RAFT_SIM_FIRST_SEED"].flatMap(UInt64.init) ?? 1
    static let seedCount = environment["RAFT_SIM_SEEDS"].flatMap(UInt64.init) ?? 2_000

    /// Batches of seeds, so that test cases can run in parallel without one per seed (as many
    /// at once as `CPUBoundTrait` allows).
    static var batches: [UInt64] {
        if replaySeed != nil { return [0] }
        return Array(0..<((seedCount + seedsPerBatch - 1) / seedsPerBatch))
    }

    @Test(.cpuBound, arguments: batches)
    func seeds(batch: UInt64) throws {
        if let seed = Self.replaySeed {
            let tracing = Self.environment["RAFT_SIM_TRACE"] == "1"
            CrashReporter.running(seed, slot: 0)
            defer { CrashReporter.running(nil, slot: 0) }
            let summary = try Simulation(seed: seed, tracing: tracing).run()
            print("seed \(seed): \(summary)")
            return
        }
        let start = Self.firstSeed + batch * Self.seedsPerBatch
        let end = min(start + Self.seedsPerBatch, Self.firstSeed + Self.seedCount)
        for seed in start..<end {
            CrashReporter.running(seed, slot: Int(batch))
            defer { CrashReporter.running(nil, slot: Int(batch)) }
            do {
                _ = try Simulation(seed: seed).run()
            } catch {
                Issue.record("\(error)")
                return
            }
        }
    }

    /// The runs must actually exercise what they claim to: elections, crashes, snapshots sent
    /// to followers, membership changes, transfers, leaders cut off by churn, leaders' writes
    /// lost in a crash after the leader went on without waiting for them, and a client workload.
    @Test(.cpuBound) func simulationExercisesEveryFault() throws {
        var total = Simulation.Summary()
        for seed: UInt64 in 100_001...100_020 {
            let summary = try Simulation(seed: seed).run()
            total.events += summary.events
            total.operations += summary.operations
            total.elections += summary.elections
            total.snapshotsSent += summary.snapshotsSent
            total.crashes += summary.crashes
            total.pauses += summary.pauses
            total.confChanges += summary.confChanges
            total.transfers += summary.transfers
            total.transfersCompleted += summary.transfersCompleted
            total.churnedLeaders += summary.churnedLeaders
            total.leaderWritesLost += summary.leaderWritesLost
        }
        print("20 seeds: \(total)")
        #expect(total.elections > 40)
        #expect(total.crashes > 10)
        #expect(total.pauses > 5)
        #expect(total.snapshotsSent > 5)
        #expect(total.confChanges > 10)
        #expect(total.transfers > 5)
        #expect(total.transfersCompleted > 3)
        #expect(total.churnedLeaders > 3)
        #expect(total.leaderWritesLost > 5)
        #expect(total.operations > 500)
    }

    @Test(.cpuBound) func oneSeedReplaysExactly() throws {
        let first = Simulation(seed: 42)
        let second = Simulation(seed: 42)
        _ = try first.run()
        _ = try second.run()
        #expect(first.history == second.history)
        #expect(first.now == second.now)
    }
}
