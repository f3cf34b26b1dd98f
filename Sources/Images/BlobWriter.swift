import Glibc

/// One blob being written: chunks appended to a temp file and hashed as they come, then
/// `commit` checks the digest, flushes, and renames the file into place.
///
/// For a puller that receives a body chunk by chunk. Not thread-safe: one writer, one task.
/// A writer dropped without `commit` or `abandon` removes its temp file.
public final class BlobWriter {
    /// The digest the content must have.
    public let expected: Digest
    private let temporaryPath: String
    private let finalPath: String
    private let directory: String
    private var fd: Int32
    private var hasher = DigestHasher()
    /// Bytes appended so far.
    public private(set) var byteCount: Int64 = 0

    init(expected: Digest, temporaryPath: String, finalPath: String, directory: String) throws(ImageError) {
        self.expected = expected
        self.temporaryPath = temporaryPath
        self.finalPath = finalPath
        self.directory = directory
        // O_EXCL: the name is ours alone, never a file another writer (or an attacker's
        // symlink) put there.
        fd = open(temporaryPath, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw .lastSystemError("open", temporaryPath) }
    }

    /// Appends the next chunk.
    public func append(_ chunk: [UInt8]) throws(ImageError) {
        hasher.update(chunk)
        var written = 0
        while written < chunk.count {
            let count = chunk.withUnsafeBytes { write(fd, $0.baseAddress.map { $0 + written }, $0.count - written) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .lastSystemError("write", temporaryPath)
            }
            written += count
        }
        byteCount += Int64(chunk.count)
    }

    /// Publishes the blob if its content has the expected digest; otherwise removes the temp
    /// file and throws `digestMismatch`. The file and then the directory are flushed, so a blob
    /// that exists after a crash is whole.
    public func commit() throws(ImageError) {
        let actual = hasher.finalize()
        guard actual == expected else {
            abandon()
            throw .digestMismatch(expected: expected, actual: actual)
        }
        guard fsync(fd) == 0 else { throw .lastSystemError("fsync", temporaryPath) }
        // Read-only from now on: a blob is never changed in place.
        guard fchmod(fd, 0o444) == 0 else { throw .lastSystemError("fchmod", temporaryPath) }
        close(fd)
        fd = -1
        guard rename(temporaryPath, finalPath) == 0 else { throw .lastSystemError("rename", finalPath) }
        try FileSystem.sync(directory)
    }

    /// Gives up: the temp file is removed.
    public func abandon() {
        if fd >= 0 {
            close(fd)
            fd = -1
        }
        unlink(temporaryPath)
    }

    deinit {
        if fd >= 0 {
            close(fd)
            unlink(temporaryPath)
        }
    }
}
