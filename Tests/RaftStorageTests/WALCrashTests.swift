import Foundation
import Testing
import TestSupport
@testable import Raft
@testable import raft_wal_crasher

/// Crash safety with real processes: `raft-wal-crasher` appends and syncs from 16 tasks and prints
/// each durable index; the test SIGKILLs it at a seeded random moment (sometimes while it is still
/// recovering), reopens the log, and checks that every acknowledged entry is there, intact, and
/// that the log is a prefix of what was written. Runs for about 20 seconds or
/// `RAFT_WAL_CRASH_ITERATIONS` rounds; `RAFT_WAL_CRASH_SEED` picks the seed.
@Suite("WAL crash safety", .dedicatedThread, .serialized)
struct WALCrashTests {
    /// Small segments, so that rollover and release (every 700th entry writes a marker) happen
    /// many times a second and get killed in the middle too.
    static let segmentBytes = 32 * 1024

    struct Round {
        var acknowledged: [UInt64]
        var readyIndex: UInt64?
    }

    @Test(.timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
    func everyAcknowledgedEntrySurvivesSIGKILL() throws {
        let environment = ProcessInfo.processInfo.environment
        let seed = environment["RAFT_WAL_CRASH_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64(UInt32.max))
        let iterationLimit = environment["RAFT_WAL_CRASH_ITERATIONS"].flatMap(Int.init)
        let timeBudget: Duration = iterationLimit == nil ? .seconds(20) : .seconds(3600)
        print("WAL crash test seed \(seed) (replay with RAFT_WAL_CRASH_SEED=\(seed))")
        var random = SplitMix64(seed: seed)
        let directory = try TemporaryDirectory()
        let walPath = directory.appending("wal")
        let clock = ContinuousClock()
        let started = clock.now
        var highestAcknowledged: UInt64 = 0
        var rounds = 0
        var totalAcknowledged = 0
        var tornTails = 0
        while clock.now - started < timeBudget && rounds < (iterationLimit ?? Int.max) {
            // Kill during recovery one time in eight, otherwise after 0-40 ms of appending.
            let killDuringStartup = random.next() % 8 == 0
            let delayMicroseconds = killDuringStartup ? random.next() % 3_000 : random.next() % 40_000
            let round = try runAndKill(walPath: walPath, killDuringStartup: killDuringStartup, delayMicroseconds: delayMicroseconds)
            rounds += 1
            totalAcknowledged += round.acknowledged.count
            if let ready = round.readyIndex {
                // The child recovered at least everything acknowledged before.
                #expect(ready >= highestAcknowledged, "seed \(seed) round \(rounds): recovered to \(ready), acknowledged \(highestAcknowledged)")
            }
            highestAcknowledged = max(highestAcknowledged, round.acknowledged.max() ?? 0)

            let (log, recovered) = try WriteAheadLog.open(directory: walPath, options: .init(segmentBytes: Self.segmentBytes))
            log.close()
            if recovered.tornTail != nil { tornTails += 1 }
            let first = recovered.snapshot.index + 1
            let last = recovered.entries.last?.index ?? recovered.snapshot.index
            #expect(last >= highestAcknowledged, "seed \(seed) round \(rounds): log ends at \(last), acknowledged \(highestAcknowledged)")
            #expect(recovered.entries.map(\.index) == Array(first..<(last + 1)), "seed \(seed) round \(rounds): not contiguous")
            let damaged = recovered.entries.first { $0 != CrashWorkload.entry(forIndex: $0.index) }
            #expect(damaged == nil, "seed \(seed) round \(rounds): entry \(damaged?.index ?? 0) differs from what was written")
            #expect(recovered.hardState.commit < last + 1)
            // The log may hold entries written but never acknowledged; the next run continues from
            // its end, so the highest acknowledged index can only grow.
            highestAcknowledged = max(highestAcknowledged, last)
            if damaged != nil || last < highestAcknowledged { break }
        }
        print("WAL crash test: \(rounds) kills, \(totalAcknowledged) acknowledged entries checked, log at \(highestAcknowledged), \(tornTails) torn tails repaired")
        #expect(rounds >= 5)
        #expect(totalAcknowledged > 0)
    }

    private func runAndKill(walPath: String, killDuringStartup: Bool, delayMicroseconds: UInt64) throws -> Round {
        let process = Process()
        process.executableURL = crasherURL()
        process.arguments = [walPath, String(Self.segmentBytes), "16"]
        let output = Pipe()
        process.standardOutput = output
        let reader = PipeReader(output.fileHandleForReading)
        try process.run()
        if !killDuringStartup { reader.waitForLine(prefix: "ready", timeout: .seconds(20)) }
        usleep(UInt32(delayMicroseconds))
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        let lines = reader.finish()
        var round = Round(acknowledged: [], readyIndex: nil)
        for line in lines {
            if line.hasPrefix("ack "), let index = UInt64(line.dropFirst(4)) { round.acknowledged.append(index) }
            if line.hasPrefix("ready "), let index = UInt64(line.dropFirst(6)) { round.readyIndex = index }
            if line.hasPrefix("error ") || line.hasPrefix("usage") { Issue.record("crasher: \(line)") }
        }
        return round
    }

    private func crasherURL() -> URL {
        // The test bundle and the executables are built into the same products directory.
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("raft-wal-crasher").path)
            && directory.path != "/" {
            directory = directory.deletingLastPathComponent()
        }
        return directory.appendingPathComponent("raft-wal-crasher")
    }
}

/// Reads a child's stdout on a thread of its own until EOF, collecting whole lines.
final class PipeReader: @unchecked Sendable {
    // @unchecked: `lines` and `finished` are guarded by `condition`.
    private let condition = NSCondition()
    private var lines: [String] = []
    private var finished = false

    init(_ handle: FileHandle) {
        let thread = Thread { [self] in
            var pending = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                pending.append(chunk)
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[pending.startIndex..<newline], as: UTF8.self)
                    pending.removeSubrange(pending.startIndex...newline)
                    condition.lock()
                    lines.append(line)
                    condition.broadcast()
                    condition.unlock()
                }
            }
            condition.lock()
            finished = true
            condition.broadcast()
            condition.unlock()
        }
        thread.start()
    }

    func waitForLine(prefix: String, timeout: Duration) {
        let deadline = Date().addingTimeInterval(Double(timeout.components.seconds))
        condition.lock()
        defer { condition.unlock() }
        while !finished && !lines.contains(where: { $0.hasPrefix(prefix) }) {
            if !condition.wait(until: deadline) { return }
        }
    }

    /// Waits for EOF and returns every line.
    func finish() -> [String] {
        condition.lock()
        defer { condition.unlock() }
        while !finished { condition.wait() }
        return lines
    }
}

/// A small seeded generator (Steele, Lea & Flood's SplitMix64), so that a failing round replays.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
