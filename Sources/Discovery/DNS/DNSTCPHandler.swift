import IdleTimer
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
/// pipelining; answering in order is the simple, allowed choice). Queries are answered only while
/// the connection's write buffer is below its high-water mark; those read meanwhile wait, and
/// reading pauses until they are answered. So a client that sends queries without reading the
/// answers holds us to the water mark plus one answer: one read of small queries could otherwise
/// become hundreds of answers of up to 64 KiB each.
///
/// Idle connections are closed (§6.2.3): idle is `idleTimeout` without a whole query read or an
/// answer written out. Bytes alone do not count: a client sending a byte now and then, never a
/// whole query, would hold one of the server's few connections for ever (a slowloris); and an
/// answer still going out to a client reading slowly keeps its connection, which a timeout on
/// reads alone closed with answers owed.
final class DNSTCPHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = Never
    typealias OutboundOut = ByteBuffer

    private let shared: DNSServerShared
    private var random: DNSRandom
    /// Queries read and not answered yet, in order.
    private var waiting = CircularBuffer<ByteBuffer>()
    private var needsFlush = false
    private var readPending = false
    private let idle: IdleTimer

    init(shared: DNSServerShared, random: DNSRandom, idleTimeout: TimeAmount) {
        self.shared = shared
        self.random = random
        idle = IdleTimer(timeout: idleTimeout)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        idle.start(on: context.eventLoop) { context.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idle.stop()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        idle.touch()
        waiting.append(unwrapInboundIn(data))
        answerWaiting(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        flushIfNeeded(context: context)
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if context.channel.isWritable && waiting.isEmpty {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable {
            answerWaiting(context: context)
            flushIfNeeded(context: context)
            if readPending && waiting.isEmpty {
                readPending = false
                context.read()
            }
        }
        context.fireChannelWritabilityChanged()
    }

    /// Answers waiting queries, oldest first, while the channel is writable.
    private func answerWaiting(context: ChannelHandlerContext) {
        while context.channel.isWritable, let query = waiting.popFirst() {
            let reply = DNSResponder.respond(
                to: query, zone: shared.zone, transport: .tcp, limits: shared.limits, random: &random,
                allocator: context.channel.allocator)
            shared.counters.record(reply)
            guard case .send(var response, _, _) = reply else { continue }
            var frame = context.channel.allocator.buffer(capacity: 2 + response.readableBytes)
            frame.writeInteger(UInt16(response.readableBytes))
            frame.writeBuffer(&response)
            let written = context.eventLoop.makePromise(of: Void.self)
            written.futureResult.assumeIsolated().whenSuccess { [idle] in idle.touch() }
            context.write(wrapOutboundOut(frame), promise: written)
            needsFlush = true
        }
    }

    private func flushIfNeeded(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A bad frame, a reset: this connection ends, the server goes on.
        context.close(promise: nil)
    }
}
