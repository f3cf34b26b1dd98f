import NIOCore

/// Answers queries arriving as datagrams: each datagram is one query (RFC 1035 §4.2.1).
/// Responses are written as they are made and flushed once per read burst, so that NIO can send
/// them together (sendmmsg).
final class DNSUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let shared: DNSServerShared
    private var random: DNSRandom
    private var needsFlush = false

    init(shared: DNSServerShared, random: DNSRandom) {
        self.shared = shared
        self.random = random
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let reply = DNSResponder.respond(
            to: envelope.data, zone: shared.zone, transport: .udp, limits: shared.limits, random: &random,
            allocator: context.channel.allocator)
        shared.counters.record(reply)
        guard case .send(let response, _, _) = reply else { return }
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: response)), promise: nil)
        needsFlush = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A send to one client failing (an ICMP error, a full socket buffer) or one bad read is
        // that datagram's problem: the channel stays open and goes on serving everyone else.
    }
}
