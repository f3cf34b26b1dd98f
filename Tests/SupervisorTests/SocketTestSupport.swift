import Glibc

@testable import Supervisor

/// Writes all of `bytes`.
func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(SystemCallError) {
    var offset = 0
    while offset < bytes.count {
        let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n > 0 else { throw SystemCallError(call: "write", errno: errno) }
        offset += n
    }
}

/// Reads until end of file.
func readAll(_ fd: Int32) throws(SystemCallError) -> [UInt8] {
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n < 0 { throw SystemCallError(call: "read", errno: errno) }
        if n == 0 { return result }
        result += buffer[0..<n]
    }
}

/// A blocking connection to 127.0.0.1:`port` whose receive buffer is `receiveBuffer` bytes (set
/// before connecting, so that the window is small from the start), with 10 s timeouts.
func loopbackConnection(port: Int, receiveBuffer: Int32) throws -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue), 0)
    var size = receiveBuffer
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    let rc = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard fd >= 0, rc == 0 else {
        let error = errno
        close(fd)
        throw SystemCallError(call: "connect", path: "127.0.0.1:\(port)", errno: error)
    }
    return fd
}

/// A socket listening on 127.0.0.1 at a port the kernel chose; non-blocking for an event loop
/// (`ForwardingServer` takes it as the node's listeners are made), blocking for a thread.
final class LoopbackListener: Sendable {
    let descriptor: Int32
    let port: Int

    init(nonBlocking: Bool = true) throws {
        let flags = SOCK_STREAM.rawValue | SOCK_CLOEXEC.rawValue | (nonBlocking ? SOCK_NONBLOCK.rawValue : 0)
        let fd = socket(AF_INET, Int32(flags), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, $0, &length) == 0
            }
        }
        guard fd >= 0, bound else {
            let error = errno
            close(fd)
            throw SystemCallError(call: "bind", path: "127.0.0.1:0", errno: error)
        }
        descriptor = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }
}
