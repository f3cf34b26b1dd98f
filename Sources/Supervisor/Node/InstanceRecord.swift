import Foundation

/// An instance's state file (`state.json` in its state directory): what a new agent needs to
/// recognise the running process (pid, start time, boot) and to resume supervising it where the
/// previous one stopped (phase, restart history, health, readiness, recent events).
struct InstanceRecord: Codable, Sendable {
    static let fileName = "state.json"
    static let currentVersion = 1

    var version = InstanceRecord.currentVersion
    var serviceName: String
    var instanceID: String
    /// /proc/sys/kernel/random/boot_id when written: after a reboot nothing recorded still runs.
    var bootID: String
    /// The main process, while there is one.
    var process: ProcessIdentity?
    var machine: InstanceSnapshot
    var events: [InstanceEvent]

    init(serviceName: String, instanceID: String, bootID: String, process: ProcessIdentity?, machine: InstanceSnapshot,
         events: [InstanceEvent])
    {
        self.serviceName = serviceName
        self.instanceID = instanceID
        self.bootID = bootID
        self.process = process
        self.machine = machine
        self.events = events
    }

    func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? Array(encoder.encode(self))) ?? []
    }

    /// The record in `directory`, if there is a readable one of this version.
    static func read(in directory: String) -> InstanceRecord? {
        guard let bytes = try? FileSystem.read(directory + "/" + fileName),
            let record = try? JSONDecoder().decode(InstanceRecord.self, from: Data(bytes)),
            record.version == currentVersion
        else { return nil }
        return record
    }
}
