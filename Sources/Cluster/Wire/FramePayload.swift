import NIOCore

/// Reading and writing the length-prefixed fields of frame payloads. Every read is bounded by
/// the payload: a length that runs past it is a malformed frame, never a large allocation.
extension ByteBuffer {
    mutating func writeShortString(_ string: String) {
        writeInteger(UInt16(string.utf8.count))
        writeString(string)
    }

    mutating func writeLongBytes(_ bytes: [UInt8]) {
        writeInteger(UInt32(bytes.count))
        writeBytes(bytes)
    }

    mutating func readShortString(kind: Frame.Kind, field: String) throws(FrameError) -> String {
        guard let length = readInteger(as: UInt16.self), let string = readString(length: Int(length)) else {
            throw .malformed(kind: kind, reason: "\(field) runs past the frame")
        }
        return string
    }

    mutating func readLongBytes(kind: Frame.Kind, field: String) throws(FrameError) -> [UInt8] {
        guard let length = readInteger(as: UInt32.self), let bytes = readBytes(length: Int(length)) else {
            throw .malformed(kind: kind, reason: "\(field) runs past the frame")
        }
        return bytes
    }

    func expectEnd(kind: Frame.Kind) throws(FrameError) {
        guard readableBytes == 0 else { throw .malformed(kind: kind, reason: "\(readableBytes) bytes after the last field") }
    }
}
