import Raft
import Linearizability

/// Histories that are linearizable by construction: clients take turns calling operations with
/// random windows, each operation takes effect at a random instant inside its window, and a real
/// register, applied in the order of those instants, gives each its output. The order of the
/// instants is a linearization, so the check must accept every such history.
///
/// Every write and CAS writes a value of its own, so a read's value names the one operation it
/// can have come from: that is what lets the corruption tests know when a changed read is
/// necessarily a violation.
struct SimulatedHistory {
    /// The shape's times are in microseconds, the recorded ones in nanoseconds.
    static let nanosecondsPerTick: UInt64 = 1_000

    struct Shape {
        var clients: Int
        var operationsPerClient: Int
        var keys: [String]
        /// Idle time between a client's return and its next call, at most.
        var maxGap: UInt64
        /// Time from call to taking effect, and from taking effect to return, at most each.
        var maxLatency: UInt64
        /// Per mille of operations that time out, and that are refused.
        var unknownPerMille: Int
        var failedPerMille: Int
    }

    var operations: [RecordedOperation]

    init(_ shape: Shape, seed: UInt64) {
        var random = SplitMix64(seed: seed)
        var planned: [Planned] = []
        for client in 0..<shape.clients {
            var now = UInt64.random(in: 0...shape.maxGap, using: &random)
            for number in 0..<shape.operationsPerClient {
                let operation = Planned(client: client, number: number, shape: shape, calledAt: now, random: &random)
                planned.append(operation)
                now = operation.returnTime + UInt64.random(in: 1...shape.maxGap, using: &random)
            }
        }
        // Apply in the order of the instants they took effect; ties by position, arbitrary but fixed.
        let order = planned.indices.filter { planned[$0].effectTime != nil }.sorted {
            (planned[$0].effectTime!, $0) < (planned[$1].effectTime!, $1)
        }
        var register: [String: String] = [:]
        var outcomes: [RecordedOperation.Outcome?] = Array(repeating: nil, count: planned.count)
        for position in order {
            let current = register[planned[position].key]
            if planned[position].expectsCurrent, case .cas(_, let new) = planned[position].kind {
                planned[position].kind = .cas(expected: current, new: new)
            }
            let operation = planned[position]
            switch operation.kind {
            case .read:
                outcomes[position] = .ok(current)
            case .write(let value):
                register[operation.key] = value
                outcomes[position] = .ok(nil)
            case .cas(let expected, let new):
                if current == expected {
                    register[operation.key] = new
                    outcomes[position] = .ok(nil)
                } else {
                    outcomes[position] = .compareFailed
                }
            }
        }
        operations = planned.enumerated().map { position, operation in
            RecordedOperation(
                client: operation.client, key: operation.key, kind: operation.kind,
                callTime: operation.callTime * Self.nanosecondsPerTick, returnTime: operation.returnTime * Self.nanosecondsPerTick,
                outcome: operation.fate.recorded ?? outcomes[position]!)
        }
        // As a recorder would write them: in order of call.
        operations.sort { ($0.callTime, $0.client) < ($1.callTime, $1.client) }
    }
}

/// One operation before the register has answered it.
private struct Planned {
    enum Fate {
        case completed, timedOut, refused

        /// The outcome recorded whatever the register answered; nil for the register's answer.
        var recorded: RecordedOperation.Outcome? {
            switch self {
            case .completed: nil
            case .timedOut: .unknown
            case .refused: .failed
            }
        }
    }

    var client: Int
    var key: String
    var kind: RecordedOperation.Kind
    /// A CAS that will expect whatever the value is when it takes effect, so that it swaps:
    /// a client that read the value first. The others expect a value picked at random.
    var expectsCurrent = false
    var callTime: UInt64
    var returnTime: UInt64
    /// When it took effect, or nil if it never did.
    var effectTime: UInt64?
    var fate: Fate

    init(client: Int, number: Int, shape: SimulatedHistory.Shape, calledAt call: UInt64, random: inout SplitMix64) {
        self.client = client
        key = shape.keys.randomElement(using: &random)!
        callTime = call
        let fateDraw = Int.random(in: 0..<1000, using: &random)
        fate = fateDraw < shape.unknownPerMille ? .timedOut
            : fateDraw < shape.unknownPerMille + shape.failedPerMille ? .refused : .completed
        let value = "c\(client)-\(number)"
        switch Int.random(in: 0..<10, using: &random) {
        case 0..<4: kind = .read
        case 4..<7: kind = .write(value)
        default:
            // Otherwise a value this key may plausibly hold: one of a recent few of any client's.
            expectsCurrent = Bool.random(using: &random)
            let expected = Bool.random(using: &random) ? nil
                : "c\(Int.random(in: 0..<shape.clients, using: &random))-\(max(0, number - Int.random(in: 0...2, using: &random)))"
            kind = .cas(expected: expected, new: value)
        }
        let effect = call + UInt64.random(in: 0...shape.maxLatency, using: &random)
        returnTime = effect + UInt64.random(in: 0...shape.maxLatency, using: &random)
        switch fate {
        case .completed:
            effectTime = effect
        case .refused:
            effectTime = nil
        case .timedOut:
            // Perhaps never, perhaps long after the client gave up.
            effectTime = Bool.random(using: &random) ? nil
                : call + UInt64.random(in: 0...(4 * shape.maxLatency), using: &random)
        }
    }
}

