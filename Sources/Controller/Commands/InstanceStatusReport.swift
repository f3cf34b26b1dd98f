/// One instance's new status, as its node saw it.
///
/// Codable as synthesized: the optional members are written only when known and read as nil
/// when absent, so entries written before `mainPID`, `restartCount` and `lastExit` existed
/// still decode.
public struct InstanceStatusReport: Sendable, Hashable, Codable {
    /// The instance reported on.
    public var id: InstanceID
    /// Its status now.
    public var status: InstanceStatus
    /// How it finally ended, once it has (`completed`, `failed`, `stopped`); a process that
    /// exits and is restarted is in ``lastExit`` instead.
    public var exit: ExitInfo?
    /// What happened, for people ("restartScheduled: restart 2 in 500ms after: exited with status 1").
    public var message: String
    /// The main process's pid on the node; nil while no process runs.
    public var mainPID: Int32?
    /// Restarts by the node's supervisor over the instance's life; nil when not known.
    public var restartCount: Int?
    /// The most recent exit of its process, kept across restarts; nil when none is known.
    public var lastExit: ExitInfo?

    /// A report as a node's worker builds it.
    public init(
        id: InstanceID, status: InstanceStatus, exit: ExitInfo? = nil, message: String = "", mainPID: Int32? = nil,
        restartCount: Int? = nil, lastExit: ExitInfo? = nil
    ) {
        self.id = id
        self.status = status
        self.exit = exit
        self.message = message
        self.mainPID = mainPID
        self.restartCount = restartCount
        self.lastExit = lastExit
    }

    /// Whether the report tells the cluster something that `previous`, the last report sent
    /// for the instance, did not: another status, exit, pid, restart count or last exit. A
    /// message alone is not news (health results repeat), except while `starting`, where each
    /// one says why the instance is not up (a restart's delay and cause).
    public func isNews(after previous: InstanceStatusReport?) -> Bool {
        guard let previous else { return true }
        return status == .starting || status != previous.status || exit != previous.exit || mainPID != previous.mainPID
            || restartCount != previous.restartCount || lastExit != previous.lastExit
    }
}
