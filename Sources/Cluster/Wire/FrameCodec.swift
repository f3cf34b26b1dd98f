import NIOCore
import Synchronization

/// The largest frame payload a connection accepts now: small until the peer has shown who it is,
/// raised by the connection's last handler once it has (its decoder and handler share one).
public final class FrameSizeLimit: Sendable {
    private let bytes: Atomic<Int>

    public init(_ bytes: Int) { self.bytes = Atomic(bytes) }

    public var current: Int { bytes.load(ordering: .relaxed) }

    public func set(_ value: Int) { bytes.store(value, ordering: .relaxed) }
}

/// Splits the byte stream from a peer into frames, refusing any longer than `maximumPayloadBytes`
/// before buffering it (the length is checked as soon as the header is in).
public struct FrameDecoder: ByteToMessageDecoder, Sendable {
    public typealias InboundOut = Frame

    private let limit: FrameSizeLimit

    /// The largest payload accepted now.
    public var maximumPayloadBytes: Int { limit.current }

    public init(maximumPayloadBytes: Int) {
        limit = FrameSizeLimit(maximumPayloadBytes)
    }

    /// A decoder whose limit `limit` sets, frame by frame.
    public init(limit: FrameSizeLimit) {
        self.limit = limit
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.nextFrame(from: &buffer, maximumPayloadBytes: maximumPayloadBytes) else { return .needMoreData }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A connection that ends mid-frame loses that frame: Raft tolerates the loss.
        try decode(context: context, buffer: &buffer)
    }

    /// The next whole frame at the front of `buffer`, consumed; nil when more bytes are needed.
    /// Pure, so that the fuzz test drives it without a channel.
    public static func nextFrame(from buffer: inout ByteBuffer, maximumPayloadBytes: Int) throws(FrameError) -> Frame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self),
            let kindByte = buffer.getInteger(at: buffer.readerIndex + 4, as: UInt8.self)
        else { return nil }
        guard Int(length) <= maximumPayloadBytes else { throw .oversized(length: Int(length), limit: maximumPayloadBytes) }
        guard let kind = Frame.Kind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        guard buffer.readableBytes >= Frame.headerBytes + Int(length) else { return nil }
        buffer.moveReaderIndex(forwardBy: Frame.headerBytes)
        guard let payload = buffer.readSlice(length: Int(length)) else { return nil }
        return Frame(kind: kind, payload: payload)
    }
}

/// Writes frames with their header.
public struct FrameEncoder: MessageToByteEncoder, Sendable {
    public typealias OutboundIn = Frame

    public init() {}

    public func encode(data frame: Frame, out: inout ByteBuffer) {
        Self.append(frame, to: &out)
    }

    /// Appends `frame`, header first.
    public static func append(_ frame: Frame, to out: inout ByteBuffer) {
        out.writeInteger(UInt32(frame.payload.readableBytes))
        out.writeInteger(frame.kind.rawValue)
        var payload = frame.payload
        out.writeBuffer(&payload)
    }
}
