import NIOCore

/// Ends a connection (or a pair of them) through which nothing happened for `timeout`: its
/// owner calls `touch()` on whatever counts as activity, and `expire` runs once `timeout` has
/// passed since the last touch. One task is scheduled at a time, at the last touch plus the
/// timeout as known when it was scheduled; finding a later touch, it schedules itself again for
/// then. A touch costs a clock read, where rescheduling on every byte would cost a cancel and an
/// insertion in the loop's task queue.
///
/// Not Sendable: used on the event loop it was started on, from that loop's handlers.
public final class IdleTimer {
    public let timeout: TimeAmount
    private var lastActivity = NIODeadline.now()
    private var task: Scheduled<Void>?
    private var stopped = false

    public init(timeout: TimeAmount) {
        self.timeout = timeout
    }

    /// Something happened: the idle time counts from now.
    public func touch() {
        lastActivity = .now()
    }

    /// Starts timing on `loop` (the idle time counts from the last touch, or from this timer's
    /// making); `expire` runs there once, when the timeout passes without a touch. Does nothing
    /// when started already or stopped.
    public func start(on loop: any EventLoop, expire: @escaping () -> Void) {
        guard task == nil, !stopped else { return }
        schedule(at: lastActivity + timeout, on: loop, expire: expire)
    }

    /// Stops for good: `expire` will not run.
    public func stop() {
        stopped = true
        task?.cancel()
        task = nil
    }

    private func schedule(at deadline: NIODeadline, on loop: any EventLoop, expire: @escaping () -> Void) {
        task = loop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            // Stopped, but already in the loop's batch of due tasks: a cancel does not reach it.
            guard !stopped else { return }
            let idleUntil = lastActivity + timeout
            guard NIODeadline.now() >= idleUntil else {
                schedule(at: idleUntil, on: loop, expire: expire)
                return
            }
            task = nil
            stopped = true
            expire()
        }
    }
}
