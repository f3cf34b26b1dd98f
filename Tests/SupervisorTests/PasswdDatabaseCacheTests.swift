import Foundation
import Glibc
import Testing

@testable import Supervisor

/// The parsed /etc/passwd and /etc/group of a root are reused only while both files are the
/// ones read: a rewrite in place, a replacement and a removal are each seen at the next launch.
@Suite struct PasswdDatabaseCacheTests {
    let root: String

    init() throws {
        root = FileManager.default.temporaryDirectory.path + "/flotilla-passwd-cache-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: root + "/etc", withIntermediateDirectories: true)
    }

    func write(_ text: String, to path: String) throws {
        try text.write(toFile: root + path, atomically: false, encoding: .utf8)
    }

    func stamps() -> [FileStamp?] {
        ["/etc/passwd", "/etc/group"].map { path in
            let fd = open(root + path, O_RDONLY | O_CLOEXEC)
            defer { if fd >= 0 { close(fd) } }
            return FileStamp(descriptor: fd)
        }
    }

    @Test func changesToEitherFileAreSeenAndUnchangedFilesAreNotReadAgain() throws {
        defer { try? FileManager.default.removeItem(atPath: root) }
        let cache = PasswdDatabaseCache()
        try write("alice:x:1000:1000::/home/alice:/bin/sh\n", to: "/etc/passwd")
        try write("staff:x:50:alice\n", to: "/etc/group")
        let first = try PasswdDatabase.read(root: root, cache: cache)
        #expect(first.users.map(\.name) == ["alice"])
        #expect(cache.database(root: root, stamps: stamps()) != nil, "the read is kept for the next launch")

        // Same length, same inode: only the times change.
        let handle = try #require(FileHandle(forWritingAtPath: root + "/etc/passwd"))
        try handle.write(contentsOf: Data("brian:x:1000:1000::/home/brian:/bin/sh\n".utf8))
        try handle.close()
        #expect(cache.database(root: root, stamps: stamps()) == nil)
        #expect(try PasswdDatabase.read(root: root, cache: cache).users.map(\.name) == ["brian"])

        // Replaced by rename: another inode.
        try "brian:x:1000:1000::/home/brian:/bin/sh\ncarol:x:1001:1001::/home/carol:/bin/sh\n"
            .write(toFile: root + "/etc/passwd", atomically: true, encoding: .utf8)
        #expect(try PasswdDatabase.read(root: root, cache: cache).users.map(\.name) == ["brian", "carol"])

        // A removed group file is an empty database, not the remembered one.
        try FileManager.default.removeItem(atPath: root + "/etc/group")
        let last = try PasswdDatabase.read(root: root, cache: cache)
        #expect(last.groups.isEmpty)
        #expect(last.users.count == 2)
    }
}
