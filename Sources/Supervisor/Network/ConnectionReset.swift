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
        options.setSoLinger(NIOLinger(l_onoff: 1, l_linger: 0)).whenComplete { _ in channel.close(promise: nil) }
    }

}

/// Decides whether a dialled connection was taken by the instance. A connect that succeeds says
/// little when the listener is another agent's published port, which accepts before it dials
/// inside the instance's namespace and resets the connection when that fails (within its
/// connect timeout). So the outcome waits: the instance's first byte, or `window` without a
/// failure, is an answer (`onAnswer`); a read or write that fails before then (a reset, a
/// timeout, an unreachable host) is a refusal (`onRefusal`, before the error goes on to close the
/// glued pair); an orderly end before it (the instance's FIN), or a close of ours (the caller
/// left, the idle timeout), is neither. At most one of the two is called. Leaves the pipeline
/// once settled.
final class FirstByteWatch: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// Longer than a published port takes to refuse (its connect inside times out at 5 s): a
    /// service that never speaks first (a log sink, an upload answered at its end) is counted as
    /// served after it, and a failure hours later is not taken for a refusal.
    static let window = PortPublisher.connectTimeout + .seconds(1)

    private var outcome: (answer: () -> Void, refusal: () -> Void)?
    private var windowEnd: Scheduled<Void>?

    init(onAnswer: @escaping () -> Void, onRefusal: @escaping () -> Void) {
        outcome = (onAnswer, onRefusal)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        windowEnd = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Self.window.nanosecondsClamped)) { [self] in
            answered(context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        windowEnd?.cancel()
        windowEnd = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // On before the handler leaves: a removed context passes nothing on.
        context.fireChannelRead(data)
        answered(context)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        refused(by: error)
        context.fireErrorCaught(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The instance's orderly end (connections allow half-closure): neither outcome, and a
        // reset of the client's later bytes by its kernel is no refusal.
        if let event = event as? ChannelEvent, case .inputClosed = event { outcome = nil }
        context.fireUserInboundEventTriggered(event)
    }

    /// A write that fails closes the channel without an `errorCaught` (NIO fails its promise),
    /// and the kernel clears a reset once a write has reported it: watched by its promise.
    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard outcome != nil else {
            context.write(data, promise: promise)
            return
        }
        let written = promise ?? context.eventLoop.makePromise()
        written.futureResult.assumeIsolated().whenFailure { [self] error in refused(by: error) }
        context.write(data, promise: written)
    }

    func channelInactive(context: ChannelHandlerContext) {
        outcome = nil
        context.fireChannelInactive()
    }

    private func answered(_ context: ChannelHandlerContext) {
        let answer = outcome?.answer
        outcome = nil
        answer?()
        // Once: the first read or the window's end, whichever comes first.
        guard windowEnd != nil else { return }
        windowEnd?.cancel()
        windowEnd = nil
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }

    /// The socket's own errors are the instance's (or its network's); NIO's channel errors are
    /// ours (a write after our own close).
    private func refused(by error: any Error) {
        guard error is IOError, let refusal = outcome?.refusal else { return }
        outcome = nil
        refusal()
    }
}
