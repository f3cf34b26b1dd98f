#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Zero-fills a new segment with direct I/O, then reads it into the page cache.
///
/// Buffered, the 64 MiB of zeros cost the kernel about half a CPU-second each time (copied into
/// the page cache, then written back): measured here, 0.48 s of system time against none with
/// O_DIRECT. Three servers roll over within moments of each other, and kv-bench's runs that
/// held a rollover had a p99 of 40-46 ms at 64 clients against 11-12 ms in those that did not
/// (vmstat: 177 MB written in one second at 74% system time). Read back afterwards, the pages
/// are in the cache, clean, when the writer appends to them; otherwise each append that
/// reaches a new page would wait for that page to be read first (about 50 us here).
enum SegmentZeroFill {
    /// O_DIRECT needs buffers, offsets and lengths aligned to the device's logical block size;
    /// 4 KiB covers every block size in use.
    static let blockBytes = 4096
    static let chunkBytes = 1 << 20
    /// open(2)'s O_DIRECT, which Glibc's module map leaves out (it is behind _GNU_SOURCE): the
    /// value of asm-generic/fcntl.h where an architecture uses it, arm's own; nil elsewhere
    /// (powerpc's 0o400000, for one, is not written down here), where segments are buffered.
    #if arch(x86_64) || arch(riscv64) || arch(s390x)
    static let openDirect: Int32? = 0o40000
    #elseif arch(arm64) || arch(arm)
    static let openDirect: Int32? = 0o200000
    #else
    static let openDirect: Int32? = nil
    #endif

    /// Writes `segmentBytes` zeros to a new file at `path` with O_DIRECT, syncing each
    /// mebibyte and reading it into the page cache, calling `between` between mebibytes. False
    /// when the file system does not take direct I/O (EINVAL), having written nothing that the
    /// caller's O_TRUNC does not undo.
    static func direct(path: String, segmentBytes: Int, between: () -> Void) throws -> Bool {
        guard let openDirect else { return false }
        let file: PosixFile
        do {
            file = try PosixFile(path: path, flags: O_WRONLY | O_CREAT | O_TRUNC | openDirect)
        } catch StorageError.systemCall(let failure) where failure.errno == EINVAL {
            return false
        }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: blockBytes)
        defer { buffer.deallocate() }
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
        let readBack = UnsafeMutableRawBufferPointer.allocate(byteCount: chunkBytes, alignment: blockBytes)
        defer { readBack.deallocate() }
        let reader = try PosixFile(path: path, flags: O_RDONLY)
        do {
            try inChunks(of: segmentBytes, between: between) { offset, count in
                try file.rawWrite(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: offset)
                try file.dataSync()
                try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: readBack[0..<count]), at: offset)
            }
        } catch StorageError.systemCall(let failure) where failure.errno == EINVAL && failure.call == "pwrite" {
            // Some file systems accept the flag at open and refuse the write; the caller then
            // writes the whole file again, buffered.
            return false
        }
        return true
    }

    /// Calls `body` for each mebibyte of `bytes` in order (offset, count), `between` between two.
    /// A mebibyte at a time, each synced by `body`: one 64 MiB flush at the end would sit in the
    /// disk's queue ahead of the live segment's group commits for tens of milliseconds.
    static func inChunks(of bytes: Int, between: () -> Void, _ body: (Int, Int) throws -> Void) throws {
        var offset = 0
        while offset < bytes {
            if offset > 0 { between() }
            let count = min(chunkBytes, bytes - offset)
            try body(offset, count)
            offset += count
        }
    }
}
