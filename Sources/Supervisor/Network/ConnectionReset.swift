#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// Ending a forwarded connection with a reset (RST) rather than an orderly close (FIN): what a
/// client sees when the other side refused it. A published port accepts a connection before it
/// knows whether the instance will take its own connection onward; closed with a FIN, a refused
/// connection looks like a server that answered nothing and hung up.
enum ConnectionReset {
    /// Closes `channel` so that its peer gets a reset: SO_LINGER on with a zero timeout makes
    /// close(2) send RST and drop what is unsent.
    static func reset(_ channel: Channel) {
        guard let options = channel as? SocketOptionProvider else {
            channel.close(promise: nil)
            return
        }
        options.setSoLinger(linger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// Whether `error` is the peer's reset of the connection, as a read or a write meets it.
    static func isReset(_ error: any Error) -> Bool {
        guard let error = error as? IOError else { return false }
        return error.errnoCode == ECONNRESET || error.errnoCode == EPIPE
    }
}

/// Decides whether a dialled connection was taken by the instance: a reset before its first byte
/// is a refusal that came after the connect, as from another agent's published port (which
/// accepts before it dials inside the instance's namespace, and resets when that fails). Calls
/// exactly one of its two closures: `onRefusal` for such a reset (before the error goes on to
/// close the glued pair), `onAnswer` at the first byte or at an orderly end without one. Leaves
/// the pipeline at the first byte.
final class ResetBeforeFirstByte: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var outcome: (answer: () -> Void, refusal: () -> Void)?

    init(onAnswer: @escaping () -> Void, onRefusal: @escaping () -> Void) {
        outcome = (onAnswer, onRefusal)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let answer = outcome?.answer
        outcome = nil
        answer?()
        context.fireChannelRead(data)
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if ConnectionReset.isReset(error), let refusal = outcome?.refusal {
            outcome = nil
            refusal()
        }
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        let answer = outcome?.answer
        outcome = nil
        answer?()
        context.fireChannelInactive()
    }
}
