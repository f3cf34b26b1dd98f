#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A failed system call at the storage edge: which call, on which path, and the errno, so the
/// message reads like crun's (`fdatasync "/var/lib/x/wal/0001.wal": Input/output error`).
public struct SystemCallError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The call that failed, as named in its man page (`open`, `fdatasync`, `rename`).
    public var call: String
    /// The path the call was made on (for a rename, "from -> to").
    public var path: String
    /// The errno the call left.
    public var errno: Int32

    /// Records a failure of `call` on `path` with `errno`.
    public init(call: String, path: String, errno: Int32) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    /// `call "path": strerror (errno N)`.
    public var description: String {
        let reason = String(cString: strerror(errno))
        return "\(call) \"\(path)\": \(reason) (errno \(errno))"
    }
}
