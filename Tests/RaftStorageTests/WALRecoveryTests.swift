import Foundation
import Testing
@testable import Raft

/// Recovery: a torn tail is cut off, anything else damaged refuses to open with file and offset.
@Suite("WAL recovery and corruption")
struct WALRecoveryTests {
    static let segmentBytes = 4096

    /// Writes entries 1...count in batches of five, closes, and returns the segment paths.
    private func writeLog(in directory: TemporaryDirectory, count: UInt64) async throws -> [String] {
        let (log, _) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: Self.segmentBytes))
        for start in stride(from: UInt64(1), through: count, by: 5) {
            try await log.append(testEntries(start...min(start + 4, count)).map(WALRecord.entry))
        }
        log.close()
        return try FileBytes.names(in: directory.path).filter { $0.hasSuffix(".wal") }.map(directory.appending)
    }

    /// Byte offsets of the entry records in a segment.
    private func entryOffsets(_ path: String, isLast: Bool) throws -> [(offset: Int, index: UInt64)] {
        let name = String(path.split(separator: "/").last ?? "")
        let sequence = try #require(WALSegmentName.sequence(fromFileName: name))
        return try WALSegmentScanner.scan(path: path, sequence: sequence, isLast: isLast).records.compactMap { record in
            if case .entry(let entry) = record.record { return (record.offset, entry.index) }
            return nil
        }
    }

    private func reopen(_ directory: TemporaryDirectory) throws -> WriteAheadLog.Recovered {
        let (log, recovered) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: Self.segmentBytes))
        log.close()
        return recovered
    }

    @Test(arguments: ["zeroed half", "cut short"])
    func tornLastRecordIsCutOff(how: String) async throws {
        let directory = try TemporaryDirectory()
        let segments = try await writeLog(in: directory, count: 20)
        let last = try #require(segments.last)
        let lastRecord = try #require(try entryOffsets(last, isLast: true).last)
        #expect(lastRecord.index == 20)
        var bytes = try FileBytes.read(last)
        if how == "zeroed half" {
            // A write that reached the page cache only in part, into the zero-filled space ahead.
            for offset in (lastRecord.offset + 20)..<(lastRecord.offset + 60) { bytes[offset] = 0 }
        } else {
            // A file whose size reached disk but not all of the last record.
            bytes.removeSubrange((lastRecord.offset + 20)...)
        }
        try FileBytes.write(bytes, to: last)

        let recovered = try reopen(directory)
        #expect(recovered.entries == testEntries(1...19))
        #expect(recovered.tornTail == WALTornTail(path: last, offset: lastRecord.offset))

        // Appending over the repaired tail, then reopening, shows the new record and nothing of
        // the torn one's leftovers.
        do {
            let (log, _) = try WriteAheadLog.open(directory: directory.path, options: .init(segmentBytes: Self.segmentBytes))
            try await log.append([.entry(Entry(term: 2, index: 20, data: [9]))])
            log.close()
        }
        let again = try reopen(directory)
        #expect(again.entries == testEntries(1...19) + [Entry(term: 2, index: 20, data: [9])])
        #expect(again.tornTail == nil)
    }

    @Test func checksumFailingLastRecordIsCutOff() async throws {
        let directory = try TemporaryDirectory()
        let segments = try await writeLog(in: directory, count: 12)
        let last = try #require(segments.last)
        let lastRecord = try #require(try entryOffsets(last, isLast: true).last)
        try FileBytes.flip(last, at: lastRecord.offset + 30)
        let recovered = try reopen(directory)
        #expect(recovered.entries == testEntries(1...11))
        #expect(recovered.tornTail?.offset == lastRecord.offset)
    }

    @Test(arguments: [0, 4, 10, 40])
    func flippedByteInTheMiddleOfTheLastSegmentRefusesToOpen(byteInRecord: Int) async throws {
        let directory = try TemporaryDirectory()
        let segments = try await writeLog(in: directory, count: 30)
        let last = try #require(segments.last)
        let records = try entryOffsets(last, isLast: true)
        let victim = records[records.count / 2]
        try FileBytes.flip(last, at: victim.offset + byteInRecord)
        let error = #expect(throws: StorageError.self) { _ = try reopen(directory) }
        guard case .corruptRecord(let path, let offset, _) = error else {
            Issue.record("expected corruptRecord, got \(String(describing: error))")
            return
        }
        #expect(path == last)
        #expect(offset == victim.offset)
        let message = String(describing: try #require(error))
        #expect(message.contains(last) && message.contains("byte offset \(victim.offset)"), "\(message)")
    }

    @Test func damagedLastRecordOfAnEarlierSegmentRefusesToOpen() async throws {
        let directory = try TemporaryDirectory()
        let segments = try await writeLog(in: directory, count: 200)
        #expect(segments.count >= 3)
        let earlier = segments[1]
        let victim = try #require(try entryOffsets(earlier, isLast: false).last)
        try FileBytes.flip(earlier, at: victim.offset + 12)
        #expect(throws: StorageError.corruptRecord(
            path: earlier, offset: victim.offset,
            reason: "checksum mismatch (stored \(try storedChecksum(earlier, victim.offset)), computed \(try computedChecksum(earlier, victim.offset))) before the end of a segment that is not the last (segments are cut to length when the log rolls over)"
        )) { _ = try reopen(directory) }
    }

    @Test func zeroedLengthWithRecordsAfterItRefusesToOpen() async throws {
        let directory = try TemporaryDirectory()
        let segments = try await writeLog(in: directory, count: 10)
        let last = try #require(segments.last)
        let records = try entryOffsets(last, isLast: true)
        let victim = records[3]
        var bytes = try FileBytes.read(last)
        for offset in victim.offset..<(victim.offset + 4) { bytes[offset] = 0 }
        try FileBytes.write(bytes, to: last)
        let error = #expect(throws: StorageError.self) { _ = try reopen(directory) }
        guard case .corruptRecord(let path, let offset, let reason) = error else {
            Issue.record("expected corruptRecord, got \(String(describing: error))")
            return
        }
        #expect(path == last && offset == victim.offset)
        #expect(reason.contains("good record follows at byte offset \(records[4].offset)"), "\(reason)")
    }

    @Test func missingMiddleSegmentRefusesToOpen() async throws {
        let directory = try TemporaryDirectory()
        let segments = try await writeLog(in: directory, count: 200)
        try FileManager.default.removeItem(atPath: segments[1])
        #expect(throws: StorageError.self) { _ = try reopen(directory) }
    }

    @Test func leftoverTemporarySegmentIsIgnoredAndRemoved() async throws {
        let directory = try TemporaryDirectory()
        _ = try await writeLog(in: directory, count: 10)
        let stray = directory.appending(WALSegmentName.fileName(sequence: 99) + ".tmp")
        try FileBytes.write([1, 2, 3, 4, 5, 6, 7, 8, 9], to: stray)
        let recovered = try reopen(directory)
        #expect(recovered.entries == testEntries(1...10))
        #expect(!FileManager.default.fileExists(atPath: stray))
    }

    private func storedChecksum(_ path: String, _ offset: Int) throws -> String {
        let bytes = try FileBytes.read(path)
        let value = UInt32(bytes[offset + 4]) | UInt32(bytes[offset + 5]) << 8 | UInt32(bytes[offset + 6]) << 16 | UInt32(bytes[offset + 7]) << 24
        return "0x" + String(value, radix: 16)
    }

    private func computedChecksum(_ path: String, _ offset: Int) throws -> String {
        let bytes = try FileBytes.read(path)
        let length = Int(bytes[offset]) | Int(bytes[offset + 1]) << 8 | Int(bytes[offset + 2]) << 16 | Int(bytes[offset + 3]) << 24
        var crc = CRC32C()
        crc.update(bytes[offset..<(offset + 4)])
        crc.update(bytes[(offset + 8)..<(offset + 8 + length)])
        return "0x" + String(crc.value, radix: 16)
    }
}
