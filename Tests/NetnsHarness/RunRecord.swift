import Foundation
import Glibc

/// A run's record under `/run/flotilla-netns/<run-id>/`, written before anything is made so that
/// whatever a run leaves behind can be found again by a later one (`HostNetwork.sweepStale`):
///
/// * `owner`: the owning process's pid and start time (`ProcessTable.startTime`), which tell a
///   live owner from a dead one whose pid was reused;
/// * `namespaces`: the network namespaces the run makes, one a line, written before they are made;
/// * `processes`: `role pid starttime` a line, for every process the run has started and not yet
///   seen end (each leads a process group of its own).
struct RunRecord {
    /// Where every run's record lives (tmpfs: a reboot, which also ends every namespace, clears it).
    static let root = "/run/flotilla-netns"

    let runID: String
    var directory: String { "\(Self.root)/\(runID)" }

    /// One started process, as recorded.
    struct Started: Equatable {
        var role: String
        var pid: pid_t
        var startTime: UInt64
    }

    /// Makes the directory and writes the owner and the namespaces the run is about to make.
    func create(ownerPID: pid_t, ownerStartTime: UInt64, namespaces: [String]) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw HostNetworkError.recordFailed(path: directory, reason: "\(error)")
        }
        try write("namespaces", namespaces.map { $0 + "\n" }.joined())
        // The owner last: a directory with an owner is complete (see `sweepStale`).
        try write("owner", "\(ownerPID) \(ownerStartTime)\n")
    }

    /// Replaces the list of started processes.
    func writeProcesses(_ processes: [Started]) throws {
        try write("processes", processes.map { "\($0.role) \($0.pid) \($0.startTime)\n" }.joined())
    }

    /// Removes the whole record.
    func remove() throws {
        do {
            if FileManager.default.fileExists(atPath: directory) {
                try FileManager.default.removeItem(atPath: directory)
            }
        } catch {
            throw HostNetworkError.recordFailed(path: directory, reason: "\(error)")
        }
    }

    /// The owner's pid and start time, or nil when the owner file is missing or unreadable.
    func owner() -> (pid: pid_t, startTime: UInt64)? {
        let fields = read("owner").split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let pid = pid_t(fields[0]), let start = UInt64(fields[1]) else { return nil }
        return (pid, start)
    }

    func namespaces() -> [String] {
        read("namespaces").split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    func processes() -> [Started] {
        read("processes").split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 3, let pid = pid_t(fields[1]), let start = UInt64(fields[2]) else { return nil }
            return Started(role: String(fields[0]), pid: pid, startTime: start)
        }
    }

    /// Every run id with a directory under `root`.
    static func all() -> [RunRecord] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map(RunRecord.init(runID:))
    }

    /// Seconds since the directory last changed, to give a run being created time to write its
    /// owner before a sweep calls it abandoned.
    func ageSeconds() -> Double {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: directory),
              let modified = attributes[.modificationDate] as? Date
        else { return .infinity }
        return Date().timeIntervalSince(modified)
    }

    private func read(_ name: String) -> String {
        (try? String(contentsOfFile: "\(directory)/\(name)", encoding: .utf8)) ?? ""
    }

    /// Writes `contents` to a temporary file and renames it into place, so a reader never sees
    /// half a file.
    private func write(_ name: String, _ contents: String) throws {
        let path = "\(directory)/\(name)"
        do {
            try contents.write(toFile: path, atomically: true, encoding: .utf8)
        } catch {
            throw HostNetworkError.recordFailed(path: path, reason: "\(error)")
        }
    }
}

/// Namespaces as `ip netns` sees them, and their removal with everything that runs in them.
enum Namespaces {
    /// The names `ip netns list` shows (each line is `NAME` or `NAME (id: N)`).
    static func list() -> [String] {
        guard let output = try? Command.check(["ip", "netns", "list"]) else { return [] }
        return output.split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
    }

    /// The pids of the processes whose network namespace is `name`.
    static func pids(in name: String) -> [pid_t] {
        guard let output = try? Command.check(["ip", "netns", "pids", name]) else { return [] }
        return output.split(whereSeparator: \.isWhitespace).compactMap { pid_t($0) }
    }

    /// SIGKILLs every process in each namespace, waits for them to go, then deletes the namespace
    /// (its veth ends, and with them their peers, go with it). Returns what could not be done;
    /// a namespace that no longer exists is not a problem.
    static func remove(_ names: [String]) -> [String] {
        var problems: [String] = []
        let existing = Set(list())
        let names = names.filter(existing.contains)
        // Kill first in all of them, then wait, so a few namespaces cost one wait, not several.
        for name in names {
            for pid in pids(in: name) { kill(pid, SIGKILL) }
        }
        for name in names {
            let deadline = ContinuousClock.now + .seconds(3)
            var left = pids(in: name)
            while !left.isEmpty && ContinuousClock.now < deadline {
                for pid in left { kill(pid, SIGKILL) }
                usleep(10_000)
                left = pids(in: name)
            }
            if !left.isEmpty { problems.append("namespace \(name) still has pids \(left)") }
            do {
                try Command.check(["ip", "netns", "delete", name])
            } catch {
                problems.append("\(error)")
            }
        }
        return problems
    }
}
