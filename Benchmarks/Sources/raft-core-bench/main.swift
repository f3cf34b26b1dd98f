// Committed entries per second through three Raft cores in one process, no I/O: each core's
// Ready is "persisted" to a MemoryStorage and its messages handed to the other cores
// directly. Proposals of 128-byte entries are made in batches between Ready rounds, so one
// append message carries many entries (batching) and several are in flight (pipelining).
//
//   swift run -c release --package-path Benchmarks raft-core-bench
import Raft

struct Node {
    var core: RaftCore
    let storage: MemoryStorage
    var inbox: [Message] = []
}

struct Result {
    var entries: Int
    var elapsed: Duration
    var readyRounds: Int
    var messages: Int

    var entriesPerSecond: Double {
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
        return Double(entries) / seconds
    }
}

/// Runs until `totalEntries` proposals are committed at the leader. `batch` proposals are
/// made per round, with at most `window` uncommitted at once; `encode` sends every message
/// through the wire format as a real transport would.
func run(batch: Int, totalEntries: Int, window: Int, encode: Bool) -> Result {
    let conf = ConfState(voters: [1, 2, 3])
    var nodes: [Node] = (1...3).map { id in
        let storage = MemoryStorage(bootstrap: conf)
        let config = RaftConfig(id: NodeID(id), maxAppendBytes: 1 << 20, maxInflightAppends: 64)
        return Node(core: RaftCore(config: config, storage: storage, random: SplitMix64(seed: UInt64(id))), storage: storage)
    }
    let payload = [UInt8](repeating: 0xAB, count: 128)
    var committedAtLeader = 0
    var readyRounds = 0
    var messageCount = 0

    /// One round: every node hands out its Ready, then every node takes its messages.
    func round() {
        for index in nodes.indices where nodes[index].core.hasReady {
            let ready = nodes[index].core.ready()
            nodes[index].storage.persist(ready)
            for message in ready.messages {
                messageCount += 1
                let delivered = encode ? ((try? Message(decoding: message.encoded())) ?? message) : message
                nodes[Int(message.to) - 1].inbox.append(delivered)
            }
            if index == 0 {
                for entry in ready.committedEntries where entry.data.count == payload.count { committedAtLeader += 1 }
            }
            nodes[index].core.advance(ready)
            readyRounds += 1
        }
        for index in nodes.indices {
            let inbox = nodes[index].inbox
            nodes[index].inbox = []
            for message in inbox {
                do {
                    try nodes[index].core.step(message)
                } catch {
                    fatalError("step failed: \(error)")
                }
            }
        }
    }

    nodes[0].core.campaign()
    while !nodes[0].core.isLeader || nodes[0].core.hasReady { round() }

    let clock = ContinuousClock()
    let start = clock.now
    var proposed = 0
    var lastCompaction = 0
    while committedAtLeader < totalEntries {
        if proposed - committedAtLeader + batch <= window && proposed < totalEntries {
            for _ in 0..<batch {
                do {
                    try nodes[0].core.propose(payload)
                } catch {
                    fatalError("propose failed: \(error)")
                }
            }
            proposed += batch
        }
        round()
        // Keep memory bounded as a real node would: snapshot and compact now and then.
        if committedAtLeader - lastCompaction >= 200_000 {
            lastCompaction = committedAtLeader
            for index in nodes.indices {
                let applied = nodes[index].core.appliedIndex
                if let snapshot = try? nodes[index].core.snapshot(at: applied, data: []) {
                    try? nodes[index].storage.compact(to: snapshot)
                }
            }
        }
    }
    return Result(entries: committedAtLeader, elapsed: clock.now - start, readyRounds: readyRounds, messages: messageCount)
}

let total = 2_000_000
print("Raft core, 3 voters in one process, no I/O, 128-byte entries, committed at the leader:")
for (batch, window) in [(1, 1), (16, 64), (256, 1_024), (1_024, 4_096), (4_096, 16_384)] {
    let entries = batch == 1 ? 100_000 : total
    // A first run warms up allocations; the second is reported.
    _ = run(batch: batch, totalEntries: min(entries, 100_000), window: window, encode: false)
    let plain = run(batch: batch, totalEntries: entries, window: window, encode: false)
    let encoded = run(batch: batch, totalEntries: entries, window: window, encode: true)
    let rate = Int(plain.entriesPerSecond)
    let encodedRate = Int(encoded.entriesPerSecond)
    print("  batch \(batch) (window \(window)): \(rate) entries/s; with the wire codec \(encodedRate) entries/s; "
        + "\(plain.messages * 1_000 / max(plain.entries, 1)) messages per 1,000 entries")
}
