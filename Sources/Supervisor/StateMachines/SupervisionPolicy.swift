import Manifest

/// Everything about keeping one instance alive that is not how to launch it: the manifest's
/// restart policy, health check, readiness mode, watchdog and stop behaviour.
public struct SupervisionPolicy: Sendable, Hashable {
    /// Restarts, backoff and the failure window.
    public var restart: RestartPolicy
    /// The health check, if any.
    public var health: HealthCheck?
    /// When an instance counts as ready.
    public var readiness: ReadinessMode
    /// The sd_notify watchdog timeout, if any.
    public var watchdog: Duration?
    /// The signal that asks the service to stop.
    public var stopSignal: Int32
    /// How long after `stopSignal` the whole cgroup is killed.
    public var stopTimeout: Duration
    /// How long a `readiness: notify` instance has to send `READY=1` (systemd's TimeoutStartSec,
    /// also 90 s by default); `EXTEND_TIMEOUT_USEC` pushes it out.
    public var readinessTimeout: Duration
    /// How long an instance that failed its health check keeps running, reported unhealthy, before
    /// its stop signal: the catalog deregisters it meanwhile, and clients, DNS caches and proxies
    /// stop sending it requests (the manifest's `discovery.drainDelay`, as for a stop the cluster asks).
    public var unhealthyDrain: Duration

    /// A policy; the defaults are the manifest's.
    public init(restart: RestartPolicy = RestartPolicy(), health: HealthCheck? = nil, readiness: ReadinessMode = .exec,
                watchdog: Duration? = nil, stopSignal: Int32 = 15, stopTimeout: Duration = .seconds(10),
                readinessTimeout: Duration = .seconds(90), unhealthyDrain: Duration = .zero)
    {
        self.unhealthyDrain = unhealthyDrain
        self.restart = restart
        self.health = health
        self.readiness = readiness
        self.watchdog = watchdog
        self.stopSignal = stopSignal
        self.stopTimeout = stopTimeout
        self.readinessTimeout = readinessTimeout
    }

    /// A manifest service's policy.
    public init(service: Service) {
        self.init(restart: service.restart, health: service.health, readiness: service.readinessMode,
                  watchdog: service.watchdog, stopSignal: service.stopSignal.number, stopTimeout: service.stopTimeout,
                  unhealthyDrain: service.discovery.enabled ? service.discovery.drainDelay : .zero)
    }
}
