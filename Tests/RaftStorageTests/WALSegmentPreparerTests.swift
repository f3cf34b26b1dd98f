import Foundation
import Testing
import TestSupport
@testable import Raft

/// The next segment's file, made ahead of use: its contents and pages, and that a writer
/// waiting for it is not kept waiting by the pace it is made at in the background.
///
/// The fallback for a file system that refuses O_DIRECT is not tested: none is at hand here
/// (tmpfs takes it since Linux 6.6).
@Suite("WAL segment preparation", .dedicatedThread)
struct WALSegmentPreparerTests {
    static let temporaryDirectoryTakesDirectIO: Bool = {
        guard let directory = try? TemporaryDirectory() else { return false }
        return takesDirectIO(directory.path)
    }()

    @Test(.enabled(if: temporaryDirectoryTakesDirectIO, "the temporary directory's file system refuses O_DIRECT"))
    func aSegmentMadeWithDirectIOIsZeroFilledAndInThePageCache() throws {
        let directory = try TemporaryDirectory()
        let path = directory.appending("direct.wal.tmp")
        let segmentBytes = 8 << 20
        #expect(try SegmentZeroFill.direct(path: path, segmentBytes: segmentBytes, between: {}))
        // The writer appends into these pages; one not in the cache is read from the disk
        // first, inside a group commit. (Before reading the file here, which would bring it in.)
        #expect(try Self.residentPages(path) == segmentBytes / Int(getpagesize()))
        try Self.expectZeroFilled(path, segmentBytes)
    }

    @Test func aWriterWaitingForTheNextSegmentEndsThePauses() throws {
        let directory = try TemporaryDirectory()
        // 32 chunks: 31 pauses, at least 1.55 s paced.
        let segmentBytes = 32 << 20
        let paced = Double(segmentBytes / SegmentZeroFill.chunkBytes - 1) * Self.seconds(WALSegmentPreparer.Preparation.pause)
        let preparer = WALSegmentPreparer(directory: directory.path, segmentBytes: segmentBytes, changes: nil)
        let started = ContinuousClock.now
        preparer.startPreparing(sequence: 2)
        Thread.sleep(forTimeInterval: 0.1)
        let path = try preparer.take(sequence: 2)
        let took = Self.seconds(ContinuousClock.now - started)
        try Self.expectZeroFilled(path, segmentBytes)
        #expect(took < paced * 0.75, "take waited \(took) s; the paced preparation takes at least \(paced) s")
    }

    // MARK: - Helpers

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Whether a file in `directory` can be opened with O_DIRECT.
    static func takesDirectIO(_ directory: String) -> Bool {
        let probe = directory + "/direct-probe"
        defer { unlink(probe) }
        guard let openDirect = SegmentZeroFill.openDirect else { return false }
        let fd = open(probe, O_WRONLY | O_CREAT | openDirect, 0o600)
        guard fd >= 0 else { return false }
        close(fd)
        return true
    }

    static func expectZeroFilled(_ path: String, _ bytes: Int) throws {
        let contents = try FileBytes.read(path)
        #expect(contents.count == bytes)
        #expect(contents.allSatisfy { $0 == 0 }, "\(path) holds bytes other than zero")
    }

    /// How many of the file's pages are in the page cache (mincore(2) over a shared mapping).
    static func residentPages(_ path: String) throws -> Int {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        var info = stat()
        try #require(fstat(fd, &info) == 0)
        let length = Int(info.st_size)
        let mapping = try #require(mmap(nil, length, PROT_READ, MAP_SHARED, fd, 0))
        try #require(mapping != MAP_FAILED)
        defer { munmap(mapping, length) }
        let pageSize = Int(getpagesize())
        var vector = [UInt8](repeating: 0, count: (length + pageSize - 1) / pageSize)
        try #require(mincore(mapping, length, &vector) == 0)
        return vector.filter { $0 & 1 == 1 }.count
    }
}
