import Raft

/// Assigns indexes and submits in one actor turn, as a Raft driver does, so that the WAL receives
/// entries in index order however many proposers race.
actor Proposer {
    private let log: WriteAheadLog
    private var nextIndex: UInt64 = 1

    init(log: WriteAheadLog) { self.log = log }

    func submit(_ data: [UInt8]) throws -> WriteAheadLog.Ticket {
        defer { nextIndex += 1 }
        return try log.submit([.entry(Entry(term: 1, index: nextIndex, data: data))])
    }
}

enum WALRuns {
    /// One proposer, one entry at a time: submit, wait for durability, repeat; `count` of them
    /// timed into `sample`.
    static func singleProposerLatency(log: WriteAheadLog, proposer: Proposer, entryBytes: Int, count: Int,
                                      into sample: inout LatencySample) async throws {
        let data = [UInt8](repeating: 0x5A, count: entryBytes)
        let clock = ContinuousClock()
        for _ in 0..<count {
            let start = clock.now
            try await log.waitUntilDurable(try await proposer.submit(data))
            sample.record(clock.now - start)
        }
    }

    struct Throughput {
        var entries: Int
        var elapsed: Duration
        var statistics: WriteAheadLog.Statistics
        var latency: LatencySample

        var entriesPerSecond: Double {
            let (seconds, attoseconds) = elapsed.components
            return Double(entries) / (Double(seconds) + Double(attoseconds) / 1e18)
        }
    }

    /// `proposers` tasks each appending `perProposer` entries, every one waited for before the next.
    static func concurrentThroughput(directory: String, options: WriteAheadLog.Options, entryBytes: Int, proposers: Int,
                                     perProposer: Int) async throws -> Throughput {
        let (log, _) = try WriteAheadLog.open(directory: directory, options: options)
        defer { log.close() }
        let proposer = Proposer(log: log)
        let data = [UInt8](repeating: 0x3C, count: entryBytes)
        let clock = ContinuousClock()
        let start = clock.now
        let latency = try await withThrowingTaskGroup(of: LatencySample.self) { group in
            for _ in 0..<proposers {
                group.addTask {
                    var sample = LatencySample(capacity: perProposer)
                    for _ in 0..<perProposer {
                        let begun = clock.now
                        try await log.waitUntilDurable(try await proposer.submit(data))
                        sample.record(clock.now - begun)
                    }
                    return sample
                }
            }
            var all = LatencySample(capacity: proposers * perProposer)
            for try await sample in group {
                for value in sample.nanoseconds { all.record(.nanoseconds(value)) }
            }
            return all
        }
        let elapsed = clock.now - start
        return Throughput(entries: proposers * perProposer, elapsed: elapsed, statistics: log.statistics, latency: latency)
    }

    /// CRC-32C over a large buffer, in MB/s: whether a hardware CRC would matter next to fsync.
    static func checksumMegabytesPerSecond() -> Double {
        let buffer = (0..<(16 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 131) }
        let clock = ContinuousClock()
        let start = clock.now
        var total: UInt32 = 0
        let rounds = 8
        for _ in 0..<rounds { total ^= CRC32C.checksum(buffer) }
        let (seconds, attoseconds) = (clock.now - start).components
        if total == 0x1234_5678 { print("") }  // keeps the loop from being optimised away
        return Double(rounds * buffer.count) / 1e6 / (Double(seconds) + Double(attoseconds) / 1e18)
    }
}
