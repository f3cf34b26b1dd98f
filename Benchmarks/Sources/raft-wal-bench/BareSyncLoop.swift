#if canImport(Glibc)
import Glibc
#endif

/// The peer the WAL is measured against: `write` then `fdatasync` of the same number of bytes,
/// with nothing around them, into one of three kinds of file: a fresh one that grows with every
/// write; space reserved by posix_fallocate (unwritten extents); space zero-filled beforehand,
/// which is what the WAL writes into, so that this peer differs from the WAL only by our code.
enum BareSyncLoop {
    /// An open file to loop on, appended to or overwritten from the start of reserved space.
    final class Target {
        let path: String
        let descriptor: Int32

        enum Layout {
            case appending
            case fallocated(bytes: Int)
            case zeroFilled(bytes: Int)
        }

        init(path: String, layout: Layout) throws {
            self.path = path
            descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
            guard descriptor >= 0 else { throw BenchmarkError.systemCall("open", path, errno) }
            switch layout {
            case .appending:
                return
            case .fallocated(let bytes):
                let code = posix_fallocate(descriptor, 0, off_t(bytes))
                guard code == 0 else { throw BenchmarkError.systemCall("posix_fallocate", path, code) }
            case .zeroFilled(let bytes):
                let zeros = [UInt8](repeating: 0, count: 1 << 20)
                for _ in 0..<(bytes / zeros.count) {
                    guard write(descriptor, zeros, zeros.count) == zeros.count else {
                        throw BenchmarkError.systemCall("write", path, errno)
                    }
                }
                guard lseek(descriptor, 0, SEEK_SET) == 0 else { throw BenchmarkError.systemCall("lseek", path, errno) }
            }
            guard fsync(descriptor) == 0 else { throw BenchmarkError.systemCall("fsync", path, errno) }
        }

        deinit {
            close(descriptor)
            unlink(path)
        }
    }

    /// `count` rounds of write + fdatasync of `recordBytes`, each timed, added to `sample`.
    static func run(_ target: Target, recordBytes: Int, count: Int, into sample: inout LatencySample) throws {
        let record = [UInt8](repeating: 0xA5, count: recordBytes)
        let clock = ContinuousClock()
        try record.withUnsafeBytes { buffer in
            for _ in 0..<count {
                let start = clock.now
                guard write(target.descriptor, buffer.baseAddress, buffer.count) == buffer.count else {
                    throw BenchmarkError.systemCall("write", target.path, errno)
                }
                guard fdatasync(target.descriptor) == 0 else { throw BenchmarkError.systemCall("fdatasync", target.path, errno) }
                sample.record(clock.now - start)
            }
        }
    }
}

enum BenchmarkError: Error, CustomStringConvertible {
    case systemCall(String, String, Int32)

    var description: String {
        switch self {
        case .systemCall(let call, let path, let code):
            return "\(call) \"\(path)\": \(String(cString: strerror(code))) (errno \(code))"
        }
    }
}
