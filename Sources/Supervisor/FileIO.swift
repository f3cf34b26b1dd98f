import Glibc

/// Whole-file reads and writes for small kernel files (cgroup, proc), failing with the call and
/// the path. Each write is one write(2): cgroup files take one value per write.
enum FileIO {
    static func readText(_ path: String) throws(SystemCallError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open", path) }
        defer { close(fd) }
        var bytes: [UInt8] = []
        // Read into uninitialised scratch space: these files are read on every exit and stats
        // call, and zeroing a heap buffer for each cost more than the read.
        let failed = withUnsafeTemporaryAllocation(byteCount: 4096, alignment: 8) { chunk -> Bool in
            while true {
                let n = read(fd, chunk.baseAddress, chunk.count)
                if n < 0 && errno == EINTR { continue }
                if n < 0 { return true }
                if n == 0 { return false }
                bytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: chunk[0..<n]))
            }
        }
        if failed { throw .last("read", path) }
        return String(decoding: bytes, as: UTF8.self)
    }

    static func write(_ text: String, to path: String) throws(SystemCallError) {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .last("open", path) }
        defer { close(fd) }
        var text = text
        let n = text.withUTF8 { Glibc.write(fd, $0.baseAddress, $0.count) }
        guard n >= 0 else { throw .last("write", path) }
    }

    static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    /// The value of `key` in a flat-keyed file (`key value` per line: memory.events, cpu.stat).
    /// Split on bytes, not Characters: it runs on every exit.
    static func keyedValue(_ key: String, in text: String) -> UInt64? {
        let key = Array(key.utf8)
        for line in text.utf8.split(separator: UInt8(ascii: "\n")) {
            let fields = line.split(separator: UInt8(ascii: " "))
            if fields.count == 2, fields[0].elementsEqual(key) {
                return UInt64(String(decoding: fields[1], as: UTF8.self))
            }
        }
        return nil
    }
}
