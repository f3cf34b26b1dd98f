#if canImport(Glibc)
import Glibc
#endif

/// A file that could not be read, with the reason from the system.
struct FileReadError: Error, CustomStringConvertible {
    var path: String
    var reason: String

    var description: String { "cannot read \(path): \(reason)" }
}

/// Reads a whole file, or standard input for "-".
func readFileBytes(_ path: String) throws(FileReadError) -> [UInt8] {
    let descriptor = path == "-" ? 0 : open(path, O_RDONLY | O_CLOEXEC)
    guard descriptor >= 0 else { throw FileReadError(path: path, reason: String(cString: strerror(errno))) }
    defer { if path != "-" { close(descriptor) } }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count < 0 {
            if errno == EINTR { continue }
            throw FileReadError(path: path, reason: String(cString: strerror(errno)))
        }
        if count == 0 { return bytes }
        bytes.append(contentsOf: chunk[0..<count])
    }
}
