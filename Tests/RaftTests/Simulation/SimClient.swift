import Raft

/// A client of the key-value service: one operation at a time, sent to the node it believes
/// leads (or any node), retried elsewhere when refused, abandoned after a timeout.
struct SimClient {
    struct Operation {
        let opID: UInt64
        let key: String
        let input: KVOperation.Input
        /// When the request was first accepted by a node; nil while it is being refused.
        var callTime: UInt64?
    }

    let id: Int
    var leaderHint: NodeID = 0
    var current: Operation?
    var sequence: UInt64 = 0
    /// Values this client wrote or read, to compare against in CAS.
    var recentValues: [String] = []

    init(id: Int) {
        self.id = id
    }

    mutating func newOperation(_ random: inout SimRandom, keys: [String]) -> Operation {
        sequence += 1
        let opID = UInt64(id) << 32 | sequence
        let key = random.pick(keys) ?? "k0"
        let value = "c\(id)v\(sequence)"
        let input: KVOperation.Input
        switch random.int(in: 0...9) {
        case 0...3: input = .put(value)
        case 4...7: input = .get
        default: input = .cas(expected: random.chance(0.2) ? nil : random.pick(recentValues), value: value)
        }
        let operation = Operation(opID: opID, key: key, input: input, callTime: nil)
        current = operation
        return operation
    }

    mutating func remember(_ value: String?) {
        guard let value else { return }
        recentValues.append(value)
        if recentValues.count > 4 { recentValues.removeFirst() }
    }
}
