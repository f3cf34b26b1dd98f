import Foundation

/// A busybox-static root filesystem for the benchmark: the binary and the applets it runs.
final class BenchRootfs {
    let path: String

    /// busybox's `true` applet in this rootfs, as the host sees it: the floor (posix_spawn) runs
    /// this same static binary, so that the three contenders exec identical code and none pays
    /// for a dynamic loader the others skip.
    var truePath: String { path + "/bin/true" }

    init() throws {
        path = NSTemporaryDirectory() + "flotilla-spawn-bench-" + UUID().uuidString.prefix(8)
        let files = FileManager.default
        for directory in ["bin", "etc", "proc", "dev", "sys", "tmp"] {
            try files.createDirectory(atPath: path + "/" + directory, withIntermediateDirectories: true)
        }
        try files.copyItem(atPath: "/usr/bin/busybox", toPath: path + "/bin/busybox")
        for applet in ["true", "sleep", "sh"] {
            try files.createSymbolicLink(atPath: path + "/bin/" + applet, withDestinationPath: "busybox")
        }
        // nobody: the density run's services use agent-bench's manifest, which runs them as nobody.
        try "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
            .write(toFile: path + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\nnogroup:x:65534:\n".write(toFile: path + "/etc/group", atomically: true, encoding: .utf8)
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
