import Foundation
import Glibc
import Testing

@testable import Supervisor

/// Root is needed for namespaces and cgroups; without it the privileged suites skip.
let isRoot = getuid() == 0

/// A busybox-static root filesystem in a temporary directory: the binary, a link per applet,
/// and minimal /etc/passwd and /etc/group (root, web 1000 with a supplementary group staff 2000).
final class BusyboxRootfs {
    let path: String

    static let busybox = "/usr/bin/busybox"

    init() throws {
        path = NSTemporaryDirectory() + "flotilla-rootfs-" + UUID().uuidString
        let files = FileManager.default
        for directory in ["bin", "etc", "proc", "dev", "sys", "tmp", "root", "home/web"] {
            try files.createDirectory(atPath: path + "/" + directory, withIntermediateDirectories: true)
        }
        // A hard link, not a copy: a copy's file is open for writing for a moment, and a service
        // another test clones meanwhile inherits that descriptor until its execve, so an exec
        // of the copy in that window fails with ETXTBSY ("Text file busy").
        if link(Self.busybox, path + "/bin/busybox") != 0 {
            try files.copyItem(atPath: Self.busybox, toPath: path + "/bin/busybox")
        }
        for applet in try Self.applets() where applet != "busybox" {
            try files.createSymbolicLink(atPath: path + "/bin/" + applet, withDestinationPath: "busybox")
        }
        try "root:x:0:0:root:/root:/bin/sh\nweb:x:1000:1000:web:/home/web:/bin/sh\n"
            .write(toFile: path + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nweb:x:1000:\nstaff:x:2000:web\n"
            .write(toFile: path + "/etc/group", atomically: true, encoding: .utf8)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// `busybox --list`, read once.
    static func applets() throws -> [String] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: busybox)
        process.arguments = ["--list"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
    }
}

/// A supervisor with its own parent cgroup, so tests running side by side never see each
/// other's cgroups; `finish` checks that nothing is left and removes the parent.
final class TestSupervisor {
    let supervisor: Supervisor
    let parent: String

    init(layout: CgroupLayout? = nil, spawnOptions: UInt32 = 0) throws {
        parent = "flotilla-test-" + UUID().uuidString.prefix(8).lowercased()
        supervisor = try Supervisor(layout: layout ?? CgroupLayout.detect(), cgroupParent: parent,
                                    spawnOptions: spawnOptions)
    }

    /// Every instance cgroup left under the parent, in any hierarchy.
    func leftoverCgroups() -> [String] {
        supervisor.cgroups.parentDirectories.flatMap { directory in
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                .filter { entry in
                    var isDirectory: ObjCBool = false
                    return FileManager.default.fileExists(atPath: directory + "/" + entry, isDirectory: &isDirectory)
                        && isDirectory.boolValue
                }
                .map { directory + "/" + $0 }
        }
    }

    /// Whatever a failed test left: every process of every instance cgroup is killed, then
    /// the cgroups and the parent are removed.
    deinit {
        let leftovers = leftoverCgroups()
        for directory in leftovers {
            if FileIO.exists(directory + "/cgroup.kill") {
                try? FileIO.write("1", to: directory + "/cgroup.kill")
            } else if FileIO.exists(directory + "/freezer.state") {
                try? InstanceCgroup.legacyFreezeAndKill(directory)
            } else {
                for pid in (try? InstanceCgroup.processes(in: directory)) ?? [] { kill(pid, SIGKILL) }
            }
        }
        let deadline = ContinuousClock.now + .seconds(5)
        for directory in leftovers {
            while rmdir(directory) != 0 && errno == EBUSY && ContinuousClock.now < deadline { usleep(1000) }
        }
        try? supervisor.cgroups.removeParent()
    }

    func finish() throws {
        #expect(leftoverCgroups() == [])
        try supervisor.cgroups.removeParent()
        for directory in supervisor.cgroups.parentDirectories {
            #expect(!FileManager.default.fileExists(atPath: directory), "\(directory) was not removed")
        }
    }
}

/// A pipe whose write end becomes the service's stdout and stderr.
final class OutputCapture {
    let readEnd: Int32
    private(set) var writeEnd: Int32

    init() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else { throw SystemCallError.last("pipe2") }
        readEnd = ends[0]
        writeEnd = ends[1]
        // Close-on-exec: only the service gets the write end (through its fd table mapping).
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        _ = fcntl(writeEnd, F_SETFD, FD_CLOEXEC)
    }

    deinit {
        close(readEnd)
        closeWriteEnd()
    }

    func closeWriteEnd() {
        if writeEnd >= 0 { close(writeEnd) }
        writeEnd = -1
    }

    /// Everything written, once every writer has closed (the instance has ended).
    func text() -> String {
        closeWriteEnd()
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(readEnd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// A spec running `command` in `rootfs` with the secure defaults, output to `capture`.
func spec(_ command: [String], rootfs: BusyboxRootfs, capture: OutputCapture? = nil, id: String = #function)
    -> LaunchSpec
{
    let sanitized = String(id.map { $0.isLetter || $0.isNumber ? $0 : "-" }.prefix(40))
    var spec = LaunchSpec(instanceID: sanitized + "-" + UUID().uuidString.prefix(6).lowercased(), command: command,
                          root: .directory(rootfs.path))
    if let capture {
        spec.standardOutput = .fileDescriptor(capture.writeEnd)
        spec.standardError = .fileDescriptor(capture.writeEnd)
    }
    return spec
}

/// Launches, waits for the end, and returns the status and the output.
func run(_ spec: LaunchSpec, on supervisor: Supervisor, capture: OutputCapture) async throws -> (InstanceExit, String) {
    let instance = try supervisor.launch(spec)
    capture.closeWriteEnd()
    let status = await instance.stop(signal: 0, timeout: .seconds(20))
    return (status, capture.text())
}

/// The host's mount table, to check that launches leave no mount behind.
func mountTable() -> String {
    (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? ""
}
