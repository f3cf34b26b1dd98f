@testable import Raft

/// The client workload: operations sent to the node believed to lead, retried when refused,
/// recorded in the history when they return.
extension Simulation {

    func startOperation(_ client: Int) throws(SafetyChecker.Violation) {
        guard now < endTime else { return }
        _ = clients[client].newOperation(&random, keys: keys)
        try submit(client)
    }

    /// Sends the current operation to the node the client believes leads, or any live node.
    func submit(_ client: Int) throws(SafetyChecker.Violation) {
        guard let operation = clients[client].current else { return }
        let live = liveNodeIDs()
        let hint = clients[client].leaderHint
        guard var target = (hint != 0 && nodes.indices.contains(index(hint)) && nodes[index(hint)].isUp)
                ? hint : random.pick(live) else {
            schedule(.clientRetry(client, opID: operation.opID), after: Self.tickUnits)
            return
        }
        if let resume = resumeDelay(target) {
            // A paused node: half the clients wait for it, and it reads their request once it
            // runs again and answers from what it then believes (a deposed leader that has not
            // heard of its successor yet); the others give up on it and try another node,
            // which leads them to the new leader.
            let others = live.filter { $0 != target && resumeDelay($0) == nil }
            if random.chance(0.5) || others.isEmpty {
                clients[client].leaderHint = target
                schedule(.clientRetry(client, opID: operation.opID), after: resume + UInt64(random.int(in: 0...3)))
                return
            }
            target = random.pick(others) ?? target
        }
        let position = index(target)
        do throws(RaftError) {
            switch operation.input {
            case .get:
                try nodes[position].core?.readIndex(context: Self.context(operation.opID))
                nodes[position].waitingReads[operation.opID] = SimNode.WaitingRead(client: client, key: operation.key)
            case .put(let value):
                try nodes[position].core?.propose(KVCommand.put(opID: operation.opID, key: operation.key, value: value).encoded())
                nodes[position].waitingWrites[operation.opID] = client
            case .cas(let expected, let value):
                try nodes[position].core?.propose(KVCommand.cas(opID: operation.opID, key: operation.key,
                                                                 expected: expected, value: value).encoded())
                nodes[position].waitingWrites[operation.opID] = client
            }
        } catch {
            // Refused before anything happened: try the hinted leader (or any node), later.
            if case .notLeader(let leaderHint) = error { clients[client].leaderHint = leaderHint }
            schedule(.clientRetry(client, opID: operation.opID), after: UInt64(random.int(in: 1...20)))
            return
        }
        clients[client].current?.callTime = now
        clients[client].leaderHint = target
        schedule(.clientTimeout(client, opID: operation.opID), after: 24 * Self.tickUnits)
        // Sent: the node's Ready carries it out.
        try afterStep(target)
    }

    func finish(_ client: Int, output: KVOperation.Output, returnTime: UInt64) {
        guard let operation = clients[client].current, let callTime = operation.callTime else { return }
        history.append(KVOperation(client: client, key: operation.key, input: operation.input, output: output,
                                   callTime: callTime, returnTime: returnTime))
        if case .put(let value) = operation.input, output == .ok { clients[client].remember(value) }
        if case .cas(_, let value) = operation.input, output == .ok { clients[client].remember(value) }
        clients[client].current = nil
        schedule(.clientStart(client), after: UInt64(random.int(in: 1...60)))
    }

    static func context(_ opID: UInt64) -> [UInt8] {
        withUnsafeBytes(of: opID.littleEndian) { Array($0) }
    }

    static func opID(_ context: [UInt8]) -> UInt64? {
        guard context.count == 8 else { return nil }
        return context.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
    }
}
