import Glibc

/// File operations of the state directory and the log files, failing with the call and the path.
enum FileSystem {
    /// The names in a directory (without `.` and `..`); empty when it does not exist.
    static func entries(of directory: String) -> [String] {
        guard let handle = opendir(directory) else { return [] }
        defer { closedir(handle) }
        var names: [String] = []
        while let entry = readdir(handle) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// mkdir -p.
    static func makeDirectories(_ path: String, mode: mode_t = 0o755) throws(SystemCallError) {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, mode) != 0 && errno != EEXIST { throw .last("mkdir", current) }
        }
    }

    /// The whole file, or what follows `offset`.
    static func read(_ path: String, from offset: Int = 0) throws(SystemCallError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open", path) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .last("fstat", path) }
        var bytes = [UInt8](repeating: 0, count: max(Int(info.st_size) - offset, 0))
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return pread(fd, base + filled, buffer.count - filled, off_t(offset + filled))
            }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw .last("read", path) }
            if n == 0 { break }
            filled += n
        }
        return Array(bytes[0..<filled])
    }

    /// Replaces `path` with `bytes` so that a crash at any moment leaves either the old or the
    /// new content (DESIGN.md §1's snapshot rule): write a temporary file, fsync it, rename it
    /// over the old one, fsync the directory.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(SystemCallError) {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .last("open", temporary) }
        do throws(SystemCallError) {
            try writeAll(fd, bytes, path: temporary)
            guard fsync(fd) == 0 else { throw .last("fsync", temporary) }
        } catch {
            close(fd)
            unlink(temporary)
            throw error
        }
        close(fd)
        guard rename(temporary, path) == 0 else { throw .last("rename", path) }
        try syncDirectory(of: path)
    }

    /// fsync of the directory holding `path`, so that a rename or unlink in it is durable.
    static func syncDirectory(of path: String) throws(SystemCallError) {
        let directory = path.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let fd = open(directory.isEmpty ? "/" : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open", directory) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw .last("fsync", directory) }
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8], path: String) throws(SystemCallError) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return write(fd, base + written, buffer.count - written)
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .last("write", path) }
            written += n
        }
    }

    /// pwrite of all of `bytes` at `offset`.
    static func writeAll(_ fd: Int32, _ bytes: [UInt8], at offset: Int64, path: String) throws(SystemCallError) {
        var written = 0
        while written < bytes.count {
            let n = bytes.withUnsafeBytes { buffer -> Int in
                guard let base = buffer.baseAddress else { return 0 }
                return pwrite(fd, base + written, buffer.count - written, off_t(offset) + off_t(written))
            }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .last("pwrite", path) }
            written += n
        }
    }

    /// rm -r (the directory's own files and subdirectories; not following symlinks).
    static func removeTree(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        if (info.st_mode & S_IFMT) == S_IFDIR {
            for name in entries(of: path) { removeTree(path + "/" + name) }
            rmdir(path)
        } else {
            unlink(path)
        }
    }
}
