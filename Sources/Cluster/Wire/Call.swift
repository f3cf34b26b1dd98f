import NIOCore

/// A request from one member to another over their connection, answered by a `Reply` with the
/// same id: what a follower uses to hand a write to the leader (the payload's meaning is the
/// caller's; the transport only carries it).
public struct Call: Sendable, Hashable {
    public var id: UInt64
    public var payload: [UInt8]

    public init(id: UInt64, payload: [UInt8]) {
        self.id = id
        self.payload = payload
    }

    public var frame: Frame {
        var buffer = ByteBuffer()
        buffer.writeInteger(id)
        buffer.writeLongBytes(payload)
        return Frame(kind: .call, payload: buffer)
    }

    public init(frame: Frame) throws(FrameError) {
        var buffer = frame.payload
        guard let id = buffer.readInteger(as: UInt64.self) else { throw .malformed(kind: .call, reason: "no call id") }
        self.id = id
        payload = try buffer.readLongBytes(kind: .call, field: "the payload")
        try buffer.expectEnd(kind: .call)
    }
}

/// The answer to the `Call` with the same id: the handler's bytes, or why it failed.
public struct Reply: Sendable, Hashable {
    public enum Outcome: Sendable, Hashable {
        case answered([UInt8])
        case failed(String)
    }

    public var id: UInt64
    public var outcome: Outcome

    public init(id: UInt64, outcome: Outcome) {
        self.id = id
        self.outcome = outcome
    }

    public var frame: Frame {
        var buffer = ByteBuffer()
        buffer.writeInteger(id)
        switch outcome {
        case .answered(let bytes):
            buffer.writeInteger(UInt8(0))
            buffer.writeLongBytes(bytes)
        case .failed(let reason):
            buffer.writeInteger(UInt8(1))
            buffer.writeShortString(String(reason.utf8.prefix(4096)) ?? "failed")
        }
        return Frame(kind: .reply, payload: buffer)
    }

    public init(frame: Frame) throws(FrameError) {
        var buffer = frame.payload
        guard let id = buffer.readInteger(as: UInt64.self) else { throw .malformed(kind: .reply, reason: "no call id") }
        self.id = id
        switch buffer.readInteger(as: UInt8.self) {
        case 0: outcome = .answered(try buffer.readLongBytes(kind: .reply, field: "the answer"))
        case 1: outcome = .failed(try buffer.readShortString(kind: .reply, field: "the reason"))
        default: throw .malformed(kind: .reply, reason: "the outcome is neither answered nor failed")
        }
        try buffer.expectEnd(kind: .reply)
    }
}
