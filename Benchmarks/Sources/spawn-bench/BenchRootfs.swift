import Foundation

/// A busybox-static root filesystem for the benchmark: the binary and the applets it runs.
final class BenchRootfs {
    let path: String

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
        try "root:x:0:0:root:/root:/bin/sh\n".write(toFile: path + "/etc/passwd", atomically: true, encoding: .utf8)
        try "root:x:0:\n".write(toFile: path + "/etc/group", atomically: true, encoding: .utf8)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
