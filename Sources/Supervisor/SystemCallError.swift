import Glibc

/// A failed system call, named the way crun names them: the call, the path it was about, and the
/// kernel's reason (`pivot_root "/srv/web/rootfs": Invalid argument`).
public struct SystemCallError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The call (`mount`, `write`, `execve`), possibly with a short qualifier (`mount proc`).
    public var call: String
    /// The path (or other operand) the call was about, quoted in the message; nil when none.
    public var path: String?
    /// The errno value.
    public var errno: Int32

    /// Makes an error from a call, its operand and an errno value.
    public init(call: String, path: String? = nil, errno: Int32) {
        self.call = call
        self.path = path
        self.errno = errno
    }

    /// `call "path": strerror(errno)`, or `call: strerror(errno)` without a path.
    public var description: String {
        let reason = String(cString: strerror(errno))
        if let path {
            return "\(call) \"\(path)\": \(reason)"
        }
        return "\(call): \(reason)"
    }

    /// The current thread's errno, for the call that just failed.
    static func last(_ call: String, _ path: String? = nil) -> SystemCallError {
        SystemCallError(call: call, path: path, errno: Glibc.errno)
    }
}
