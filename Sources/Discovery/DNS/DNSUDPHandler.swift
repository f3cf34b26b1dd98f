import CDatagram
import NIOCore

/// Answers queries arriving as datagrams: each datagram is one query (RFC 1035 §4.2.1).
/// Responses are written as they are made and flushed once per read burst, so that NIO can send
/// them together (sendmmsg).
///
/// On a wildcard address (`wildcardSocket`) each answer is sent by this handler itself, from
/// the address its query was sent to: the kernel would pick the source of a wildcard socket's
/// reply by the route back, and on a host with several addresses (or a query to 127.0.0.2)
/// that can be another one, whose answer resolvers drop as coming from an unexpected source.
final class DNSUDPHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    private let shared: DNSServerShared
    private var random: DNSRandom
    private var needsFlush = false
    /// The channel's socket when it is bound to a wildcard address; valid while the channel is
    /// open, which it is whenever a read arrives.
    private let wildcardSocket: Int32?

    init(shared: DNSServerShared, random: DNSRandom, wildcardSocket: Int32? = nil) {
        self.shared = shared
        self.random = random
        self.wildcardSocket = wildcardSocket
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let reply = DNSResponder.respond(
            to: envelope.data, zone: shared.zone, transport: .udp, limits: shared.limits, random: &random,
            allocator: context.channel.allocator)
        shared.counters.record(reply)
        guard case .send(let response, _, _) = reply else { return }
        if let socket = wildcardSocket, let source = envelope.metadata?.packetInfo,
           Self.send(response, to: envelope.remoteAddress, from: source, on: socket)
        {
            return
        }
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: response)), promise: nil)
        needsFlush = true
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if needsFlush {
            needsFlush = false
            context.flush()
        }
    }

    /// Sends `response` from the address the query came to, at once (one sendmsg per answer,
    /// where NIO's own writes go out per read burst with sendmmsg: the price of a wildcard
    /// address). False when it could not be sent so, for NIO to send it as usual: a destination
    /// that cannot be a source (a broadcast or multicast one, EINVAL; a directed broadcast,
    /// ENETUNREACH) or an address gone meanwhile. A full socket buffer (EAGAIN, ENOBUFS)
    /// drops the answer, where NIO would queue it until writable: from the wrong source, it
    /// would be dropped by the client anyway, which asks again.
    private static func send(_ response: ByteBuffer, to client: SocketAddress, from source: NIOPacketInfo, on socket: Int32) -> Bool {
        let sent = response.withUnsafeReadableBytes { bytes in
            client.withSockAddr { to, toLength in
                source.destinationAddress.withSockAddr { from, _ in
                    fl_dgram_send_from(socket, bytes.baseAddress, bytes.count, to, socklen_t(toLength), from, UInt32(clamping: source.interfaceIndex))
                }
            }
        }
        return sent >= 0 || sent == -Int(EAGAIN) || sent == -Int(ENOBUFS)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A send to one client failing (an ICMP error, a full socket buffer) or one bad read is
        // that datagram's problem: the channel stays open and goes on serving everyone else.
    }
}
