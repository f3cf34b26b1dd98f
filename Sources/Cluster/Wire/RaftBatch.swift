import NIOCore
import Raft

/// A batch of Raft messages in one frame: `[count: UInt32]` then each message as
/// `[length: UInt32][Message.encoded()]`. One frame per flush, so that a burst of messages to a
/// peer costs one write.
public enum RaftBatch {
    public static func frame(_ messages: [Message]) -> Frame {
        frame(encoded: messages.map { $0.encoded() }[...])
    }

    public static func messages(from frame: Frame) throws(FrameError) -> [Message] {
        var payload = frame.payload
        guard let count = payload.readInteger(as: UInt32.self) else { throw .malformed(kind: .raft, reason: "no message count") }
        // Each message takes at least its length prefix: a count the payload cannot hold is a
        // lie, and trusting it would reserve memory for it.
        guard Int(count) * 4 <= payload.readableBytes else {
            throw .malformed(kind: .raft, reason: "\(count) messages announced in \(payload.readableBytes) bytes")
        }
        var messages: [Message] = []
        messages.reserveCapacity(Int(count))
        for position in 0..<Int(count) {
            guard let length = payload.readInteger(as: UInt32.self), let bytes = payload.readBytes(length: Int(length)) else {
                throw .malformed(kind: .raft, reason: "message \(position) runs past the frame")
            }
            do {
                messages.append(try Message(decoding: bytes))
            } catch {
                throw .malformed(kind: .raft, reason: "message \(position): \(error)")
            }
        }
        guard payload.readableBytes == 0 else { throw .malformed(kind: .raft, reason: "\(payload.readableBytes) bytes after the last message") }
        return messages
    }
}

extension RaftBatch {
    /// A frame of messages already encoded.
    static func frame(encoded messages: ArraySlice<[UInt8]>) -> Frame {
        var payload = ByteBuffer()
        payload.reserveCapacity(4 + messages.reduce(0) { $0 + 4 + $1.count })
        payload.writeInteger(UInt32(messages.count))
        for bytes in messages {
            payload.writeInteger(UInt32(bytes.count))
            payload.writeBytes(bytes)
        }
        return Frame(kind: .raft, payload: payload)
    }
}
