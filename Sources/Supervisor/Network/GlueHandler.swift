import IdleTimer
import NIOCore

/// Joins two channels of the same event loop into one byte stream each way, with backpressure:
/// a side reads only while its partner can take more, and a half-close (EOF) on one side is
/// passed on as a half-close of the other. After the `GlueHandler` of swift-nio's
/// NIOConnectProxy example (NIO ships it as example code, not as a library), except at the end:
/// there a side that goes away, or half-closes, reaches its partner only once the partner has
/// written what it still holds (the example closes at once, dropping up to a high-water mark of
/// bytes that a slow reader had not taken yet); and a pair through which no byte went either
/// way for `idleTimeout` is closed (Envoy's TCP proxy: one hour by default), so that a peer that
/// never reads nor closes cannot hold two descriptors for ever.
final class GlueHandler {
    private var partner: GlueHandler?
    private var context: ChannelHandlerContext?
    private var pendingRead = false
    private let activity: PairActivity

    /// The pair's idle timer, touched when a byte goes through either way. It outlives whichever
    /// side goes first: the other may be the one that hangs.
    private final class PairActivity {
        let idle: IdleTimer
        /// The two sides, while in their pipelines (weak: the pipelines own them).
        weak var first: GlueHandler?
        weak var second: GlueHandler?

        init(idleTimeout: TimeAmount) {
            idle = IdleTimer(timeout: idleTimeout)
        }

        var sides: [GlueHandler] { [first, second].compactMap { $0 } }
    }

    private init(activity: PairActivity) {
        self.activity = activity
    }

    /// Two handlers, one for each channel.
    static func matchedPair(idleTimeout: TimeAmount) -> (GlueHandler, GlueHandler) {
        let activity = PairActivity(idleTimeout: idleTimeout)
        let first = GlueHandler(activity: activity)
        let second = GlueHandler(activity: activity)
        first.partner = second
        second.partner = first
        activity.first = first
        activity.second = second
        return (first, second)
    }

    /// Undoes `matchedPair` for a pair that could not be added to its pipelines.
    func unmatch() {
        partner?.partner = nil
        partner = nil
    }

    private func partnerWrite(_ buffer: ByteBuffer) {
        context?.write(wrapOutboundOut(buffer), promise: nil)
    }

    private func partnerFlush() {
        context?.flush()
    }

    /// Half-closes this side after the bytes it still has to send. NIO waits for them itself,
    /// except when this side's input is already shut: then it escalates to a full close at
    /// once, and drops them. A zero-length write completes after every write before it.
    private func partnerWriteEOF() {
        afterPendingWrites { channel in channel.close(mode: .output, promise: nil) }
    }

    /// Closes this side after the bytes it still has to send (a close at once would drop them).
    private func partnerCloseAfterPendingWrites() {
        afterPendingWrites { channel in channel.close(promise: nil) }
    }

    private func afterPendingWrites(_ body: @escaping (Channel) -> Void) {
        guard let context else { return }
        let channel = context.channel
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(ByteBuffer()), promise: written)
        written.futureResult.assumeIsolated().whenComplete { [activity] _ in
            activity.idle.touch()
            body(channel)
        }
    }

    private func partnerBecameWritable() {
        guard pendingRead else { return }
        pendingRead = false
        context?.read()
    }

    private var partnerWritable: Bool {
        context?.channel.isWritable ?? false
    }
}

extension GlueHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        // Started by the first side added; closes both sides still there.
        activity.idle.start(on: context.eventLoop) { [activity] in
            for side in activity.sides { side.context?.close(promise: nil) }
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
        partner = nil
        if activity.first === self { activity.first = nil }
        if activity.second === self { activity.second = nil }
        if activity.sides.isEmpty { activity.idle.stop() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        activity.idle.touch()
        let buffer = unwrapInboundIn(data)
        partner?.partnerWrite(buffer)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        partner?.partnerFlush()
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner?.partnerCloseAfterPendingWrites()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, case .inputClosed = event {
            partner?.partnerWriteEOF()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        partner?.partnerCloseAfterPendingWrites()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // Writable again: the peer took bytes (a slow reader of a long answer is not idle).
        if context.channel.isWritable {
            activity.idle.touch()
            partner?.partnerBecameWritable()
        }
    }

    func read(context: ChannelHandlerContext) {
        if let partner, partner.partnerWritable {
            context.read()
        } else {
            pendingRead = true
        }
    }
}

