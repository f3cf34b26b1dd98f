import NIOCore
import Raft
import Synchronization

/// Answers calls from other members: the leader's side of a forwarded write.
public protocol CallHandler: Sendable {
    /// The answer to `payload` from member `caller`; a thrown error's description goes back as
    /// the failure.
    func answer(_ payload: [UInt8], from caller: NodeID) async throws -> [UInt8]
}

/// Why a call has no answer. For `connectionLost` and `timedOut` the callee may or may not
/// have acted on it: a caller that cannot repeat it safely must find out (the Raft log says).
public enum CallError: Error, Sendable, Hashable, CustomStringConvertible {
    case noConnection(NodeID)
    case connectionLost(NodeID)
    case timedOut(NodeID, Duration)
    case failed(NodeID, reason: String)
    /// The caller's task was cancelled while it waited; the member may or may not act on it.
    case cancelled(NodeID)

    /// Whether the member may have acted on the call: it went out, and no answer came back.
    /// Asking another member then may do it twice.
    public var mayHaveActed: Bool {
        switch self {
        case .noConnection, .failed: false
        case .connectionLost, .timedOut, .cancelled: true
        }
    }

    public var description: String {
        switch self {
        case .noConnection(let peer): "no connection to member \(peer) now"
        case .connectionLost(let peer): "the connection to member \(peer) ended before it answered; it may or may not have acted"
        case .timedOut(let peer, let timeout): "member \(peer) did not answer within \(timeout); it may or may not have acted"
        case .failed(let peer, let reason): "member \(peer): \(reason)"
        case .cancelled(let peer): "the call to member \(peer) was cancelled before it answered; it may or may not have acted"
        }
    }
}

/// The calls waiting for their replies, each tied to the connection it went out on: a reply
/// counts only from that connection, and the connection's end fails what it carried.
final class PendingCalls: Sendable {
    private struct Pending {
        var peer: NodeID
        var channel: ObjectIdentifier
        var promise: EventLoopPromise<[UInt8]>
    }

    private let pending = Mutex<[UInt64: Pending]>([:])
    private let nextID = Atomic<UInt64>(1)

    /// Sends `payload` to `peer` on `channel` and returns its answer.
    func call(_ payload: [UInt8], to peer: NodeID, on channel: any Channel, timeout: Duration) async throws(CallError) -> [UInt8] {
        let id = nextID.wrappingAdd(1, ordering: .relaxed).oldValue
        let promise = channel.eventLoop.makePromise(of: [UInt8].self)
        pending.withLock { $0[id] = Pending(peer: peer, channel: ObjectIdentifier(channel), promise: promise) }
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) { [self] in
            take(id)?.fail(CallError.timedOut(peer, timeout))
        }
        // A write that failed never put the whole frame on the wire (the connection closed
        // under it): the member cannot have acted, and the caller may ask another.
        channel.writeAndFlush(Call(id: id, payload: payload).frame).whenFailure { [self] _ in
            take(id)?.fail(CallError.noConnection(peer))
        }
        do {
            // A cancelled caller stops waiting at once (an agent stopping, a watch given up);
            // a late reply then finds no call and is ignored.
            let answer = try await withTaskCancellationHandler {
                try await promise.futureResult.get()
            } onCancel: { [self] in
                take(id)?.fail(CallError.cancelled(peer))
            }
            timer.cancel()
            return answer
        } catch let error as CallError {
            timer.cancel()
            throw error
        } catch {
            timer.cancel()
            throw .connectionLost(peer)
        }
    }

    /// A reply arrived from `peer` on `channel`; one for a call not made there is ignored.
    func complete(_ reply: Reply, from peer: NodeID, on channel: any Channel) {
        let promise = pending.withLock { pending -> EventLoopPromise<[UInt8]>? in
            guard let call = pending[reply.id], call.peer == peer, call.channel == ObjectIdentifier(channel) else { return nil }
            return pending.removeValue(forKey: reply.id)?.promise
        }
        switch reply.outcome {
        case .answered(let bytes): promise?.succeed(bytes)
        case .failed(let reason): promise?.fail(CallError.failed(peer, reason: reason))
        }
    }

    /// `channel` closed: its calls will get no reply.
    func connectionEnded(_ channel: any Channel) {
        let lost = pending.withLock { pending -> [Pending] in
            let ended = pending.filter { $0.value.channel == ObjectIdentifier(channel) }
            for id in ended.keys { pending.removeValue(forKey: id) }
            return Array(ended.values)
        }
        for call in lost { call.promise.fail(CallError.connectionLost(call.peer)) }
    }

    /// Every call still waiting fails (the transport stops).
    func failAll() {
        let all = pending.withLock { pending in defer { pending.removeAll() }; return Array(pending.values) }
        for call in all { call.promise.fail(CallError.connectionLost(call.peer)) }
    }

    private func take(_ id: UInt64) -> EventLoopPromise<[UInt8]>? {
        pending.withLock { $0.removeValue(forKey: id)?.promise }
    }
}
