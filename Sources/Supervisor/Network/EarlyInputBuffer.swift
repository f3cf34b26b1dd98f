import NIOCore

/// Holds what an accepted connection delivers before it is glued to its outbound side, and
/// hands it on when it leaves the pipeline. Accepted connections start with autoRead off, so
/// that nothing is read into a pipeline with nowhere to send it; but when the client has already
/// half-closed (bytes then FIN, as `nc -N` sends a request), NIO reads the connection to its end
/// on the EOF notification, autoRead or not. Without this those bytes and the EOF were dropped,
/// and the connection hung with the backend waiting for a request that never came. What is held
/// is bounded by the socket's receive buffer: the client cannot send more before it is read.
final class EarlyInputBuffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var held: [ByteBuffer] = []
    private var inputClosed = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        held.append(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) {}

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            inputClosed = true
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        let (held, inputClosed) = (self.held, self.inputClosed)
        self.held = []
        self.inputClosed = false
        for buffer in held { context.fireChannelRead(wrapInboundOut(buffer)) }
        if !held.isEmpty { context.fireChannelReadComplete() }
        if inputClosed { context.fireUserInboundEventTriggered(ChannelEvent.inputClosed) }
        context.leavePipeline(removalToken: removalToken)
    }
}
