import struct Foundation.Date
import typealias Foundation.TimeInterval
import Glibc

/// The few file operations the store needs, each failing with the call and the path.
enum FileSystem {
    /// Flushes a file or directory to disk. A directory is flushed so that a rename or unlink in
    /// it survives a crash (the same order as Raft's snapshots: write, fsync, rename, fsync dir).
    static func sync(_ path: String) throws(ImageError) {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)
        guard fd >= 0 else { throw .lastSystemError("open", path) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .lastSystemError("fsync", path) }
    }

    /// Creates a directory and its missing parents (mode 0700: the store is root's alone).
    static func makeDirectories(_ path: String) throws(ImageError) {
        var prefix = ""
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0 && errno != EEXIST {
                throw .lastSystemError("mkdir", prefix)
            }
        }
    }

    /// The last-modification time, without following a symlink; nil when the path is gone.
    static func modificationTime(_ path: String) throws(ImageError) -> Date? {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return nil }
            throw .lastSystemError("lstat", path)
        }
        return Date(timeIntervalSince1970: TimeInterval(info.st_mtim.tv_sec) + TimeInterval(info.st_mtim.tv_nsec) / 1e9)
    }

    /// Whether anything (a file, a directory, a dangling symlink) is at `path`.
    static func exists(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) == 0
    }

    /// The names in a directory, without `.` and `..`; empty when the directory does not exist.
    static func names(in directory: String) throws(ImageError) -> [String] {
        guard let stream = opendir(directory) else {
            if errno == ENOENT { return [] }
            throw .lastSystemError("opendir", directory)
        }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    /// Removes a file or a whole tree; nothing there is fine. `lstat` decides what each path is,
    /// so a symlink is unlinked, never followed out of the tree; and a directory on another
    /// filesystem than the tree's top (a mount point: an overlay still mounted) is refused, never
    /// emptied: removing through an overlay would delete from what it is mounted over.
    static func removeTree(_ path: String) throws(ImageError) {
        try removeTree(path, device: nil)
    }

    private static func removeTree(_ path: String, device: dev_t?) throws(ImageError) {
        var info = stat()
        guard lstat(path, &info) == 0 else {
            if errno == ENOENT { return }
            throw .lastSystemError("lstat", path)
        }
        if info.st_mode & S_IFMT == S_IFDIR {
            if let device, info.st_dev != device {
                throw .system(call: "remove (a mount point, left alone)", path: path, errno: EBUSY)
            }
            for name in try names(in: path) {
                try removeTree(path + "/" + name, device: info.st_dev)
            }
            guard rmdir(path) == 0 || errno == ENOENT else { throw .lastSystemError("rmdir", path) }
        } else {
            guard unlink(path) == 0 || errno == ENOENT else { throw .lastSystemError("unlink", path) }
        }
    }

    /// A name no other writer will pick: the process id and a random number.
    static func uniqueSuffix() -> String {
        "\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
    }
}
