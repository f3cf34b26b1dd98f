import Glibc

/// An exclusive `flock` on a lock file, held until `unlock`: it serialises unpacking and removing
/// one layer across threads and across processes (two agents on one state directory by mistake).
///
/// flock locks belong to the open file description, so two opens in one process exclude each
/// other like two processes do.
struct FileLock: ~Copyable {
    private let fd: Int32
    let path: String

    /// Blocks until the lock is held. A remover may unlink the lock file while we wait for it;
    /// the lock we then get is on a file nobody else will open, so after locking we check that
    /// the path still names the file we locked and start again if not.
    init(path: String) throws(ImageError) {
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard fd >= 0 else { throw .lastSystemError("open", path) }
            guard flock(fd, LOCK_EX) == 0 else {
                let error = ImageError.lastSystemError("flock", path)
                close(fd)
                throw error
            }
            var locked = stat()
            var named = stat()
            if fstat(fd, &locked) == 0 && stat(path, &named) == 0
                && locked.st_ino == named.st_ino && locked.st_dev == named.st_dev
            {
                self.fd = fd
                self.path = path
                return
            }
            close(fd)
        }
    }

    /// Removes the lock file while holding the lock (waiters then start again on a new file),
    /// and releases it.
    consuming func unlinkAndUnlock() {
        unlink(path)
        // Consuming self runs deinit, which closes the descriptor and so releases the lock.
    }

    deinit {
        close(fd)
    }
}
