/// One transition of a supervised instance: when, what, and why. Every change of phase, health,
/// readiness or watchdog is one, so that an operator can read an instance's history.
public struct InstanceEvent: Sendable, Hashable, Codable, CustomStringConvertible {
    /// What happened.
    public enum Kind: String, Sendable, Hashable, Codable {
        case launched, adopted, launchFailed, exited, restartScheduled, restartCancelled, failed, completed
        case stopRequested, stopSignalSent, killed, stopped, lostWhileDown
        /// The cgroup could not be killed as a whole; each process was killed instead.
        case killFailed
        case healthStarting, healthy, unhealthy
        case ready, notReady, status, reloading, stopping, timeoutExtended
        case watchdogArmed, watchdogMissed, notifyRefused
        /// The service turned its watchdog off (`WATCHDOG_USEC=0`).
        case watchdogDisarmed
        /// A kind this version does not know, read from a state file a later agent wrote: kept
        /// as an event of its own, so that after a downgrade the file still decodes and its
        /// instance is adopted (a closed enum made the whole record unreadable, and the older
        /// agent started the instance afresh beside the process still running).
        case unrecognized

        public init(from decoder: any Decoder) throws {
            let raw = try decoder.singleValueContainer().decode(String.self)
            self = Kind(rawValue: raw) ?? .unrecognized
        }
        /// An adopted `private`-network process whose ports could not be published again.
        case publishFailed
    }

    /// When, on the boot clock.
    public var at: BootInstant
    /// What happened.
    public var kind: Kind
    /// Why, in words: the exit status, the failed check's answer, the refused sender.
    public var reason: String

    /// An event.
    public init(at: BootInstant, kind: Kind, reason: String) {
        self.at = at
        self.kind = kind
        self.reason = reason
    }

    public var description: String {
        reason.isEmpty ? "\(at) \(kind.rawValue)" : "\(at) \(kind.rawValue): \(reason)"
    }
}
