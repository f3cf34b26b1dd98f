import CSpawn
import Glibc

/// The writing side of one instance's log directory: numbered files of records (see
/// `LogRecordHeader`), each at most `maxFileBytes`, the newest `maxFiles` kept. Output moves from
/// the service's pipe into the current file with splice(2), without passing through user space.
/// Not thread-safe: its owner (`InstanceLog`) serialises calls.
struct LogFileSet {
    let directory: String
    let maxFileBytes: Int
    let maxFiles: Int
    /// The current (newest) file.
    private(set) var sequence: UInt64
    private var fd: Int32 = -1
    /// Its size (where the next record goes).
    private(set) var size: Int64 = 0

    /// Opens the directory (creating it), repairs the newest file's last record if a kill cut
    /// it short, and continues appending there.
    init(directory: String, maxFileBytes: Int, maxFiles: Int) throws(SystemCallError) {
        self.directory = directory
        // A record needs room for its header and at least some data.
        self.maxFileBytes = max(maxFileBytes, LogRecordHeader.size + 1024)
        self.maxFiles = max(maxFiles, 1)
        try FileSystem.makeDirectories(directory)
        sequence = Self.sequences(in: directory).last ?? 1
        try openCurrent()
        try repairTail()
    }

    /// Log file numbers present, oldest first.
    static func sequences(in directory: String) -> [UInt64] {
        FileSystem.entries(of: directory).compactMap(LogFileName.sequence(of:)).sorted()
    }

    mutating func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    private var currentPath: String {
        directory + "/" + LogFileName.name(sequence)
    }

    private mutating func openCurrent() throws(SystemCallError) {
        // Not O_APPEND: splice(2) refuses files opened that way; records go at explicit offsets.
        let path = currentPath
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .last("open", path) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw .last("fstat", path) }
        size = Int64(info.st_size)
    }

    /// Walks the current file's records; a last record cut short by a kill keeps the data that
    /// made it (splice moved exactly those bytes out of the pipe), and a header without any data,
    /// or a partial header, is cut off.
    private mutating func repairTail() throws(SystemCallError) {
        let path = currentPath
        let bytes = try FileSystem.read(path)
        var offset = 0
        while offset < bytes.count {
            let headerEnd = offset + LogRecordHeader.size
            guard headerEnd <= bytes.count, let header = LogRecordHeader(parsing: bytes[offset..<headerEnd]) else {
                try truncate(to: offset, path: path)
                return
            }
            let present = bytes.count - headerEnd
            if header.length > present {
                if present == 0 {
                    try truncate(to: offset, path: path)
                } else {
                    try FileSystem.writeAll(fd, LogRecordHeader.lengthDigits(present),
                                            at: Int64(offset + LogRecordHeader.lengthOffset), path: path)
                }
                return
            }
            offset = headerEnd + header.length
        }
    }

    private mutating func truncate(to length: Int, path: String) throws(SystemCallError) {
        guard ftruncate(fd, off_t(length)) == 0 else { throw .last("ftruncate", path) }
        size = Int64(length)
    }

    /// Starts the next file and deletes the oldest beyond `maxFiles`.
    mutating func rotate() throws(SystemCallError) {
        close()
        sequence += 1
        try openCurrent()
        let all = Self.sequences(in: directory)
        for old in all.dropLast(maxFiles) {
            unlink(directory + "/" + LogFileName.name(old))
        }
    }

    /// Moves up to `limit` bytes queued in `pipe` into a new record of `stream`. Returns the bytes
    /// moved (0: nothing was queued), and where they landed (file number, offset) for whoever
    /// reads them back (journald forwarding).
    mutating func append(from pipe: Int32, stream: LogStream, queued: Int, timestampNanoseconds: Int64)
        throws(SystemCallError) -> (moved: Int, sequence: UInt64, offset: Int64)
    {
        if size + Int64(LogRecordHeader.size) >= Int64(maxFileBytes) { try rotate() }
        let room = Int64(maxFileBytes) - size - Int64(LogRecordHeader.size)
        let length = Int(min(Int64(queued), room, Int64(LogRecordHeader.maxLength)))
        guard length > 0 else { return (0, sequence, size) }
        let path = currentPath
        let headerOffset = size
        let header = LogRecordHeader(timestampNanoseconds: timestampNanoseconds, stream: stream, length: length)
        try FileSystem.writeAll(fd, header.bytes, at: headerOffset, path: path)
        let dataOffset = headerOffset + Int64(LogRecordHeader.size)
        var moved = 0
        while moved < length {
            let n = fl_splice_to_file(pipe, fd, dataOffset + Int64(moved), length - moved)
            if n == -Int(EINVAL) && moved == 0 {
                // A file system without splice support: copy through user space instead.
                moved = try copy(from: pipe, length: length, at: dataOffset, path: path)
                break
            }
            if n <= 0 {
                if n < 0 && n != -Int(EAGAIN) {
                    // Keep the file well formed, then report.
                    try finishRecord(headerOffset: headerOffset, length: length, moved: moved, path: path)
                    throw SystemCallError(call: "splice", path: path, errno: Int32(-n))
                }
                break
            }
            moved += n
        }
        try finishRecord(headerOffset: headerOffset, length: length, moved: moved, path: path)
        return (moved, sequence, dataOffset)
    }

    /// A record whose splice moved less than its header says is shortened (or removed if empty).
    private mutating func finishRecord(headerOffset: Int64, length: Int, moved: Int, path: String) throws(SystemCallError) {
        if moved == 0 {
            try truncate(to: Int(headerOffset), path: path)
            return
        }
        if moved < length {
            try FileSystem.writeAll(fd, LogRecordHeader.lengthDigits(moved),
                                    at: headerOffset + Int64(LogRecordHeader.lengthOffset), path: path)
        }
        size = headerOffset + Int64(LogRecordHeader.size) + Int64(moved)
    }

    /// Bytes of the current file (what `append` just moved, for the journal).
    func readBack(offset: Int64, length: Int) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: length)
        let n = buffer.withUnsafeMutableBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            return pread(fd, base, raw.count, off_t(offset))
        }
        return n > 0 ? Array(buffer[0..<n]) : []
    }

    private func copy(from pipe: Int32, length: Int, at offset: Int64, path: String) throws(SystemCallError) -> Int {
        var buffer = [UInt8](repeating: 0, count: length)
        let n = buffer.withUnsafeMutableBytes { raw -> Int in
            guard let base = raw.baseAddress else { return 0 }
            return read(pipe, base, raw.count)
        }
        guard n > 0 else { return 0 }
        try FileSystem.writeAll(fd, Array(buffer[0..<n]), at: offset, path: path)
        return n
    }
}
