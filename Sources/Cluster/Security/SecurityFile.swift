#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Raft

/// Reading and durably replacing the small PEM files of the CA and of a node's credentials
/// (and other small state an agent must not lose half of, such as a client's copy of its
/// assignment). Each failure names the call and the path (`rename "/var/lib/flotilla/tls/ca-key.pem": ...`).
public enum SecurityFile {
    /// Mode of certificates: anyone may read them.
    static let certificateMode: mode_t = 0o644
    /// Mode of private keys: the owner only (what ssh and kubeadm insist on).
    public static let privateKeyMode: mode_t = 0o600
    /// Mode of a directory this code creates: it holds private keys.
    static let directoryMode: mode_t = 0o700

    /// The path of `name` inside `directory`.
    static func path(_ directory: String, _ name: String) -> String {
        directory.hasSuffix("/") ? directory + name : directory + "/" + name
    }

    /// Creates `directory` (one level) with mode 0700 unless it exists.
    public static func makeDirectory(_ directory: String) throws(ClusterSecurityError) {
        if mkdir(directory, directoryMode) != 0, errno != EEXIST { throw failure("mkdir", directory) }
    }

    /// Replaces `path` with `bytes` so that after a crash the file is either the old one or the
    /// new one, never a mix: write a temporary file created with the final mode (a key is never
    /// readable by others, not even for a moment), fsync it, rename it over the old one, then
    /// fsync the directory so that the rename itself survives a power cut (the same order as the
    /// Raft snapshots, DESIGN.md §1).
    public static func writeAtomically(_ bytes: [UInt8], to path: String, mode: mode_t) throws(ClusterSecurityError) {
        let directory = directoryOf(path)
        let temporary = path + ".tmp"
        // A leftover from a crash may have any mode; start from nothing so O_EXCL can hold.
        if unlink(temporary) != 0, errno != ENOENT { throw failure("unlink", temporary) }
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode)
        guard descriptor >= 0 else { throw failure("open", temporary) }
        do throws(ClusterSecurityError) {
            // open's mode is masked by the umask; fchmod is not, so the mode is exactly `mode`.
            guard fchmod(descriptor, mode) == 0 else { throw failure("fchmod", temporary) }
            try writeAll(bytes, to: descriptor, path: temporary)
            while fsync(descriptor) != 0 {
                if errno == EINTR { continue }
                throw failure("fsync", temporary)
            }
        } catch {
            _ = close(descriptor)
            _ = unlink(temporary)
            throw error
        }
        guard close(descriptor) == 0 else { throw failure("close", temporary) }
        guard rename(temporary, path) == 0 else {
            let error = failure("rename", "\(temporary) -> \(path)")
            _ = unlink(temporary)
            throw error
        }
        try syncDirectory(directory)
    }

    /// The whole file as text.
    static func readText(_ path: String) throws(ClusterSecurityError) -> String {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("open", path) }
        defer { _ = close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("read", path)
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw .unreadableFile(path: path, reason: "not UTF-8 text, so not PEM")
        }
        return text
    }

    /// Removes `path` if it exists, and syncs its directory so that a power cut does not bring
    /// it back.
    static func remove(_ path: String) throws(ClusterSecurityError) {
        guard unlink(path) == 0 else {
            if errno == ENOENT { return }
            throw failure("unlink", path)
        }
        try syncDirectory(directoryOf(path))
    }

    /// Whether `path` exists (any kind of file).
    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32, path: String) throws(ClusterSecurityError) {
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                write(descriptor, buffer.baseAddress.map { $0 + written }, buffer.count - written)
            }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("write", path)
            }
            written += count
        }
    }

    private static func syncDirectory(_ directory: String) throws(ClusterSecurityError) {
        let descriptor = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("open", directory) }
        defer { _ = close(descriptor) }
        while fsync(descriptor) != 0 {
            if errno == EINTR { continue }
            throw failure("fsync", directory)
        }
    }

    private static func directoryOf(_ path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    private static func failure(_ call: String, _ path: String) -> ClusterSecurityError {
        .systemCall(SystemCallError(call: call, path: path, errno: errno))
    }
}
