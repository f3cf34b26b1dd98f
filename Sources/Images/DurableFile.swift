import Glibc

/// Small files of the image store that must survive a power cut whole (the records of pulled
/// images, an instance's `image.json`): Foundation's `.atomic` write renames a temporary file
/// into place but never fsyncs it, so after a crash the name can hold an empty file.
public enum DurableFile {
    /// Removes what `write` left behind when its process died between creating its temporary
    /// file and renaming it: the hidden temporaries in `directory` last modified more than
    /// `age` ago (a write takes milliseconds, so one in flight in another process is younger).
    /// Best effort; returns the names removed.
    @discardableResult
    public static func removeLeftovers(in directory: String, olderThan age: Duration = .seconds(600)) -> [String] {
        let names = ((try? FileSystem.names(in: directory)) ?? []).filter(isTemporary)
        let cutoff = time(nil) - time_t(age.components.seconds)
        return names.filter { name in
            var info = stat()
            let path = directory + "/" + name
            guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_mtim.tv_sec < cutoff else { return false }
            return unlink(path) == 0
        }
    }

    /// What `write` puts between a file's name and the unique suffix of its temporary.
    private static let temporaryMarker = ".tmp-"

    /// Whether `name` is one of `write`'s temporaries (`.<name>.tmp-<suffix>`).
    static func isTemporary(_ name: String) -> Bool {
        name.hasPrefix(".") && name.contains(temporaryMarker)
    }

    /// Replaces `path` with `bytes`: a hidden temporary file beside it (`.<name>.tmp-…`, which
    /// readers listing `*.json` skip), fsync, rename, fsync of the directory.
    public static func write(_ bytes: [UInt8], to path: String) throws(ImageError) {
        let slash = path.lastIndex(of: "/")
        let directory = slash.map { String(path[..<$0]) } ?? "."
        let name = slash.map { String(path[path.index(after: $0)...]) } ?? path
        let temporary = directory + "/." + name + temporaryMarker + FileSystem.uniqueSuffix()
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .lastSystemError("open", temporary) }
        var open = true
        do throws(ImageError) {
            var written = 0
            while written < bytes.count {
                let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw .lastSystemError("write", temporary) }
                written += n
            }
            guard fsync(fd) == 0 else { throw .lastSystemError("fsync", temporary) }
            // Released even when close fails: closing it again could close another thread's.
            open = false
            guard close(fd) == 0 else { throw .lastSystemError("close", temporary) }
        } catch {
            if open { close(fd) }
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = ImageError.lastSystemError("rename", path)
            unlink(temporary)
            throw error
        }
        try FileSystem.sync(directory)
    }
}
