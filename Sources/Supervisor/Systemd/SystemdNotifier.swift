import CSystemd
import Glibc

/// agentd's side of the sd_notify protocol (DESIGN.md §8), through libsystemd: when systemd
/// started the agent as `Type=notify` it sets NOTIFY_SOCKET (and WATCHDOG_USEC with
/// `WatchdogSec=`); the agent reports READY=1 once it supervises its services, STATUS= lines, and
/// pings the watchdog. Without those variables every call does nothing, so the agent runs the
/// same outside systemd.
public struct SystemdNotifier: Sendable {
    /// A notifier for this process's environment.
    public init() {}

    /// Whether systemd is listening (NOTIFY_SOCKET is set).
    public var isEnabled: Bool {
        getenv("NOTIFY_SOCKET") != nil
    }

    /// The watchdog timeout systemd expects pings within (sd_watchdog_enabled: WATCHDOG_USEC,
    /// for this pid if WATCHDOG_PID says which); nil without a watchdog.
    public var watchdogTimeout: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(clamping: microseconds))
    }

    /// Sends `KEY=VALUE` assignments, one per line. Returns whether a message was sent (false
    /// without NOTIFY_SOCKET, or when sending failed).
    @discardableResult
    public func notify(_ assignments: [String]) -> Bool {
        guard isEnabled, !assignments.isEmpty else { return false }
        return sd_notify(0, assignments.joined(separator: "\n")) > 0
    }

    /// READY=1, with a STATUS= line if given.
    @discardableResult
    public func ready(status: String? = nil) -> Bool {
        notify(["READY=1"] + (status.map { ["STATUS=" + $0] } ?? []))
    }

    /// STATUS=…
    @discardableResult
    public func status(_ text: String) -> Bool {
        notify(["STATUS=" + text])
    }

    /// STOPPING=1.
    @discardableResult
    public func stopping() -> Bool {
        notify(["STOPPING=1"])
    }

    /// WATCHDOG=1.
    @discardableResult
    public func watchdogPing() -> Bool {
        notify(["WATCHDOG=1"])
    }

    /// Pings the watchdog at half its timeout (systemd's advice in sd_watchdog_enabled(3)) until
    /// the task is cancelled; nil when there is no watchdog.
    public func startWatchdog() -> Task<Void, Never>? {
        guard let timeout = watchdogTimeout else { return nil }
        let notifier = self
        return Task.detached {
            while !Task.isCancelled {
                notifier.watchdogPing()
                try? await Task.sleep(for: timeout / 2)
            }
        }
    }
}
