// raft-wal-bench: the WAL on this machine's disk (issue 3's figures).
//
//   swift run -c release --package-path Benchmarks raft-wal-bench [--directory DIR] [--quick] [--no-commit-delay]
//
// Files go to a fresh directory under /var/tmp (on this machine's disk, unlike a tmpfs /tmp).
//
// 1. 64 concurrent proposers of 256-byte entries, each waiting for durability before its next:
//    entries/s through group commit (goal >= 100,000/s).
// 2. One proposer: append + fdatasync latency p50/p99, next to a bare write+fdatasync loop of
//    the same record size in the same run (goal: p50 within 2x of the bare loop).
#if canImport(Glibc)
import Glibc
#endif
import Raft

let arguments = CommandLine.arguments
let quick = arguments.contains("--quick")
var walOptions = WriteAheadLog.Options()
if arguments.contains("--no-commit-delay") { walOptions.commitDelayLimit = .zero }
var baseDirectory = "/var/tmp"
if let flag = arguments.firstIndex(of: "--directory"), flag + 1 < arguments.count {
    baseDirectory = arguments[flag + 1]
}
var template = Array((baseDirectory + "/raft-wal-bench-XXXXXX").utf8CString)
guard mkdtemp(&template) != nil else {
    print("mkdtemp \"\(baseDirectory)\": \(String(cString: strerror(errno)))")
    exit(1)
}
let directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
defer { _ = system("rm -rf '\(directory)'") }

let entryBytes = 256
// The framed size of one 256-byte entry in the WAL (8-byte header, 18 bytes of entry fields,
// padding to 8): the bare loop writes exactly as much per sync.
let recordBytes = (8 + 18 + entryBytes + 7) / 8 * 8
let latencyCount = quick ? 1_000 : 5_000
let proposers = 64
let perProposer = quick ? 500 : 4_000

func padded(_ label: String) -> String {
    label + String(repeating: " ", count: max(1, 40 - label.count))
}

func format(_ value: Double, _ digits: Int = 1) -> String {
    let scale = pow(10.0, Double(digits))
    return String((value * scale).rounded() / scale)
}

do {
    print("raft-wal-bench: directory \(directory), \(entryBytes)-byte entries (\(recordBytes) bytes framed)")
    print("CRC-32C (slicing-by-8): \(format(WALRuns.checksumMegabytesPerSecond(), 0)) MB/s")

    // Interleave peer and WAL in rounds, so that the other tenants of this disk weigh on both
    // alike: the ratio is the figure, the absolute numbers move with the machine's load.
    let rounds = 10
    let perRound = latencyCount / rounds
    var bareAppend = LatencySample(capacity: latencyCount)
    var bareFallocated = LatencySample(capacity: latencyCount)
    var bareZeroFilled = LatencySample(capacity: latencyCount)
    var single = LatencySample(capacity: latencyCount)
    let appendTarget = try BareSyncLoop.Target(path: directory + "/bare-append", layout: .appending)
    let fallocatedTarget = try BareSyncLoop.Target(path: directory + "/bare-fallocated", layout: .fallocated(bytes: 64 << 20))
    let zeroFilledTarget = try BareSyncLoop.Target(path: directory + "/bare-zero-filled", layout: .zeroFilled(bytes: 64 << 20))
    let (singleLog, _) = try WriteAheadLog.open(directory: directory + "/wal-single", options: walOptions)
    let singleProposer = Proposer(log: singleLog)
    for _ in 0..<rounds {
        try BareSyncLoop.run(appendTarget, recordBytes: recordBytes, count: perRound, into: &bareAppend)
        try BareSyncLoop.run(zeroFilledTarget, recordBytes: recordBytes, count: perRound, into: &bareZeroFilled)
        try await WALRuns.singleProposerLatency(
            log: singleLog, proposer: singleProposer, entryBytes: entryBytes, count: perRound, into: &single)
        try BareSyncLoop.run(fallocatedTarget, recordBytes: recordBytes, count: perRound, into: &bareFallocated)
    }
    singleLog.close()

    func row(_ label: String, _ sample: LatencySample) -> String {
        padded(label) + "p50 \(format(sample.p50Microseconds)) us   p99 \(format(sample.p99Microseconds)) us"
    }
    func ratio(_ label: String, _ peer: LatencySample, goal: String = "") -> String {
        padded(label) + "p50 \(format(single.p50Microseconds / peer.p50Microseconds, 2))x   "
            + "p99 \(format(single.p99Microseconds / peer.p99Microseconds, 2))x" + goal
    }
    print("")
    print("single proposer, append + fdatasync, \(latencyCount) entries, in \(rounds) interleaved rounds:")
    print(row("  bare write+fdatasync, appending:", bareAppend))
    print(row("  bare write+fdatasync, fallocated:", bareFallocated))
    print(row("  bare write+fdatasync, zero-filled:", bareZeroFilled))
    print(row("  WAL append (submit + wait durable):", single))
    print(ratio("  ratio WAL / bare zero-filled:", bareZeroFilled, goal: "   (goal: p50 <= 2x)"))
    print(ratio("  ratio WAL / bare appending:", bareAppend, goal: "   (goal: p50 <= 2x)"))
    print(ratio("  ratio WAL / bare fallocated:", bareFallocated))

    let throughput = try await WALRuns.concurrentThroughput(
        directory: directory + "/wal-group", options: walOptions, entryBytes: entryBytes, proposers: proposers,
        perProposer: perProposer)
    let syncs = throughput.statistics.syncs
    print("")
    print("\(proposers) concurrent proposers, \(throughput.entries) entries, each waited for durability"
        + " (commit delay limit \(walOptions.commitDelayLimit)):")
    print("  throughput: \(format(throughput.entriesPerSecond, 0)) entries/s   (goal >= 100000/s)")
    print("  fdatasyncs: \(syncs), \(format(Double(throughput.entries) / Double(max(syncs, 1)))) entries per sync")
    print("  per-entry latency under load: p50 \(format(throughput.latency.p50Microseconds)) us   p99 \(format(throughput.latency.p99Microseconds)) us")
    print("  vs one bare zero-filled sync per entry: \(format(throughput.entriesPerSecond * bareZeroFilled.p50Microseconds / 1e6, 1))x")
} catch {
    print("raft-wal-bench failed: \(error)")
    exit(1)
}
