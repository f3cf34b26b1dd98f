import NIOCore

/// Splits a TCP stream into DNS messages, each preceded by its 2-byte length (RFC 1035 §4.2.2,
/// RFC 7766 §8). A length below the 12-byte header or above `maxMessageBytes` closes the
/// connection: such a frame is no query, and a huge one would have us hold its bytes.
struct DNSTCPFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer

    struct BadFrameLength: Error {
        var length: Int
    }

    let maxMessageBytes: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt16.self) else { return .needMoreData }
        guard Int(length) >= DNSWireLimit.headerBytes, Int(length) <= maxMessageBytes else {
            throw BadFrameLength(length: Int(length))
        }
        guard let frame = buffer.getSlice(at: buffer.readerIndex + 2, length: Int(length)) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 2 + Int(length))
        context.fireChannelRead(wrapInboundOut(frame))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A partial frame at EOF is discarded: there is nobody left to answer.
        while try decode(context: context, buffer: &buffer) == .continue {}
        return .needMoreData
    }
}

/// Answers the queries of one TCP connection in the order they came (RFC 7766 §6.2.1.1 allows
/// pipelining; answering in order is the simple, allowed choice). Reading pauses while the
/// connection's write buffer is above its high-water mark, so a client that sends queries without
/// reading answers cannot make us buffer without bound. Idle connections are closed (§6.2.3).
final class DNSTCPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    private let shared: DNSServerShared
    private var random: DNSRandom
    private var needsFlush = false
    private var readPending = false

    init(shared: DNSServerShared, random: DNSRandom) {
        self.shared = shared
        self.random = random
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let query = unwrapInboundIn(data)
        let reply = DNSResponder.respond(
            to: query, zone: shared.zone, transport: .tcp, limits: shared.limits, random: &random,
            allocator: context.channel.allocator)
        shared.counters.record(reply)
        guard case .send(var response, _, _) = reply else { return }
        var frame = context.channel.allocator.buffer(capacity: 2 + response.readableBytes)
        frame.writeInteger(UInt16(response.readableBytes))
        frame.writeBuffer(&response)
        context.write(wrapOutboundOut(frame), promise: nil)
        needsFlush = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable && readPending {
            readPending = false
            context.read()
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent {
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A bad frame, a reset: this connection ends, the server goes on.
        context.close(promise: nil)
    }
}
