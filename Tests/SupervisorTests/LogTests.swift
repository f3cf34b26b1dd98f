import Foundation
import Glibc
import Manifest
import Testing
import TestSupport

@testable import Supervisor

/// Output capture: nothing lost, streams tagged, rotation, tail and follow, repair after a kill.
@Suite(.dedicatedThread, .enabled(if: isRoot, "needs root: namespaces and cgroups"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct LogTests {
    /// The bytes of `stream` across every log file, in order.
    static func rawOutput(_ directory: String, _ stream: LogStream) throws -> [UInt8] {
        var out: [UInt8] = []
        for sequence in LogFileSet.sequences(in: directory) {
            let bytes = try FileSystem.read(directory + "/" + LogFileName.name(sequence))
            var offset = 0
            while offset + LogRecordHeader.size <= bytes.count {
                guard let header = LogRecordHeader(parsing: bytes[offset..<(offset + LogRecordHeader.size)]) else {
                    Issue.record("bad header at \(offset) in \(sequence)")
                    return out
                }
                let start = offset + LogRecordHeader.size
                if header.stream == stream { out += bytes[start..<(start + header.length)] }
                offset = start + header.length
            }
            #expect(offset == bytes.count, "a torn record in \(sequence)")
        }
        return out
    }

    @Test func aHundredMegabytesOfLinesWrittenAsFastAsPossibleLoseNothing() async throws {
        let rootfs = try BusyboxRootfs()
        // 1…11,500,000, one per line: about 100 MB.
        var data: [UInt8] = []
        data.reserveCapacity(100_000_000)
        for number in 1...11_500_000 {
            data += Array(String(number).utf8)
            data.append(UInt8(ascii: "\n"))
        }
        try FileManager.default.createDirectory(atPath: rootfs.path + "/data", withIntermediateDirectories: true)
        try Data(data).write(to: URL(fileURLWithPath: rootfs.path + "/data/lines"))
        try await withTestNode { test in
            var service = shellService("cat /data/lines", rootfs: rootfs, policy: SupervisionPolicy(restart: RestartPolicy(policy: .never)))
            service.logMaxFileBytes = 16 << 20
            service.logMaxFiles = 20
            let started = ContinuousClock.now
            let instance = try await test.node.supervise(service)
            let status = try await instance.wait(timeout: .seconds(120)) { $0.isFinished }
            let took = ContinuousClock.now - started
            #expect(status.phase == .completed)
            let captured = try Self.rawOutput(instance.log.logDirectory, .stdout)
            #expect(captured.count == data.count)
            #expect(captured == data, "the captured output differs from what was written")
            #expect(LogFileSet.sequences(in: instance.log.logDirectory).count >= 6)
            print("100 MB captured in \(took)")
        }
    }

    /// A full disk: the output waits in the pipe, the log pump does not spin on the write
    /// error (level-triggered epoll calls it back while the pipe stays readable), and capture
    /// resumes once there is room again.
    @Test func aFullDiskNeitherSpinsTheLogPumpNorLosesOutput() async throws {
        let rootfs = try BusyboxRootfs()
        let disk = NSTemporaryDirectory() + "flotilla-full-disk-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: disk, withIntermediateDirectories: true)
        guard mount("tmpfs", disk, "tmpfs", 0, "size=4m") == 0 else {
            Issue.record("mount tmpfs: \(String(cString: strerror(errno)))")
            return
        }
        defer {
            umount2(disk, Int32(MNT_DETACH))
            rmdir(disk)
        }
        let test = try TestNode(directory: disk + "/state")
        do {
            var service = shellService("i=0; while true; do i=$((i+1)); echo \"line $i\"; done", rootfs: rootfs)
            // At most 512 KiB of files: room for them again once the filler is gone.
            service.logMaxFileBytes = 256 << 10
            service.logMaxFiles = 2
            let instance = try await test.node.supervise(service)
            _ = try await instance.wait(timeout: .seconds(30)) { $0.phase == .running }
            // Every byte the tmpfs has left, taken, until the files stop growing (a rotation
            // deletes the oldest file and frees room: taken again) and the service blocks on
            // its full pipe.
            let filler = disk + "/filler"
            let fd = open(filler, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
            try #require(fd >= 0)
            let block = [UInt8](repeating: 0, count: 4096)
            var captured = instance.log.bytesCaptured
            var stalled = false
            for _ in 0..<20 where !stalled {
                while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
                #expect(errno == ENOSPC)
                try await Task.sleep(for: .milliseconds(300))
                let now = instance.log.bytesCaptured
                stalled = now == captured
                captured = now
            }
            close(fd)  // before the unlink below, which frees nothing while it is open
            try #require(stalled, "the files kept growing on a full disk")
            let pump = test.node.context.logPump.threadID.load(ordering: .relaxed)
            #expect(pump > 0)
            let before = try cpuTicks(statFile: "/proc/self/task/\(pump)/stat")
            try await Task.sleep(for: .seconds(2))
            let spent = try cpuTicks(statFile: "/proc/self/task/\(pump)/stat") - before
            // Spinning, the pump takes a core: about 200 ticks in 2 s.
            #expect(spent < 20, "the log pump spent \(spent) ticks in 2 s on a full disk")
            #expect(unlink(filler) == 0)
            let resumed = await eventually(within: .seconds(10)) { instance.log.bytesCaptured > captured }
            #expect(resumed, "no output captured after the disk had room again")
        } catch {
            await test.teardown()
            throw error
        }
        await test.teardown()
    }

    @Test func rotationKeepsTheConfiguredNumberOfFiles() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            var service = shellService(
                "i=0; while [ $i -lt 2000 ]; do i=$((i+1)); echo \"line $i padded to a hundred bytes ..........................................\"; done",
                rootfs: rootfs, policy: SupervisionPolicy(restart: RestartPolicy(policy: .never)))
            service.logMaxFileBytes = 8192
            service.logMaxFiles = 3
            let instance = try await test.node.supervise(service)
            _ = try await instance.wait(timeout: .seconds(60)) { $0.isFinished }
            let directory = instance.log.logDirectory
            let files = LogFileSet.sequences(in: directory)
            #expect(files.count == 3)
            for sequence in files {
                var info = stat()
                _ = stat(directory + "/" + LogFileName.name(sequence), &info)
                #expect(info.st_size <= 8192)
            }
            // The newest lines are kept; the oldest are gone with the rotated files.
            let tail = try instance.log.reader.tail(3).map(\.text)
            #expect(tail.map { $0.split(separator: " ")[1] } == ["1998", "1999", "2000"])
            let all = try instance.log.reader.lines()
            #expect(all.count < 2000 && all.count > 100)
            #expect(all.last?.text.hasPrefix("line 2000 ") == true)
        }
    }

    @Test func streamsAreTaggedAndPartialLinesJoined() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let instance = try await test.node.supervise(shellService(
                "echo out1; echo err1 >&2; printf 'par'; sleep 0.3; printf 'tial\\n'; echo err2 >&2; printf 'no newline'",
                rootfs: rootfs, policy: SupervisionPolicy(restart: RestartPolicy(policy: .never))))
            _ = try await instance.wait(timeout: .seconds(30)) { $0.isFinished }
            let lines = try instance.log.reader.lines()
            let stdout = lines.filter { $0.stream == .stdout }.map(\.text)
            let stderr = lines.filter { $0.stream == .stderr }.map(\.text)
            #expect(stdout == ["out1", "partial", "no newline"])
            #expect(stderr == ["err1", "err2"])
            #expect(lines.last?.isPartial == true)
            #expect(lines.allSatisfy { abs($0.timestampNanoseconds - BootInstant.read(CLOCK_REALTIME)) < 60_000_000_000 })
        }
    }

    @Test func followDeliversLinesAsTheyAreWritten() async throws {
        let rootfs = try BusyboxRootfs()
        try await withTestNode { test in
            let instance = try await test.node.supervise(shellService(
                "echo before; while [ ! -e /tmp/go ]; do sleep 0.05; done; i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.1; done",
                rootfs: rootfs))
            #expect(await eventually(within: .seconds(30)) { (try? capturedLines(instance))?.first == "before" })
            var received: [String] = []
            var go = false
            for try await line in instance.log.follow(tail: 1) {
                received.append(line.text)
                if !go {
                    go = FileManager.default.createFile(atPath: rootfs.path + "/tmp/go", contents: nil)
                }
                if received.count == 4 { break }
            }
            #expect(received == ["before", "tick 1", "tick 2", "tick 3"])
        }
    }

    /// A kill between a record's header and its data, or in the middle of its data: reopening
    /// keeps exactly the bytes that made it.
    @Test func reopeningRepairsARecordCutShort() throws {
        let directory = NSTemporaryDirectory() + "flotilla-logrepair-" + UUID().uuidString
        defer { FileSystem.removeTree(directory) }
        try FileSystem.makeDirectories(directory)
        let path = directory + "/" + LogFileName.name(1)
        let whole = LogRecordHeader(timestampNanoseconds: 1_000, stream: .stdout, length: 6).bytes + Array("hello\n".utf8)
        let cut = LogRecordHeader(timestampNanoseconds: 2_000, stream: .stderr, length: 100).bytes + Array("half".utf8)
        try Data(whole + cut).write(to: URL(fileURLWithPath: path))
        var files = try LogFileSet(directory: directory, maxFileBytes: 1 << 20, maxFiles: 2)
        files.close()
        var lines = try LogReader(directory: directory).lines()
        #expect(lines.map(\.text) == ["hello", "half"])
        #expect(lines.map(\.stream) == [.stdout, .stderr])

        let headerOnly = Array(LogRecordHeader(timestampNanoseconds: 3_000, stream: .stdout, length: 10).bytes.prefix(30))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        handle.seekToEndOfFile()
        handle.write(Data(headerOnly))
        try handle.close()
        files = try LogFileSet(directory: directory, maxFileBytes: 1 << 20, maxFiles: 2)
        #expect(files.size == Int64(whole.count + LogRecordHeader.size + 4))
        files.close()
        lines = try LogReader(directory: directory).lines()
        #expect(lines.map(\.text) == ["hello", "half"])
    }

    /// Lines that began in an older file than the one tail starts from are fragments there,
    /// one per stream: none is returned as if whole.
    @Test func tailNeverReturnsALineCutByAFileBoundary() throws {
        let directory = NSTemporaryDirectory() + "flotilla-logtail-" + UUID().uuidString
        defer { FileSystem.removeTree(directory) }
        try FileSystem.makeDirectories(directory)
        let older = record(.stdout, "a1\nA-par", at: 1) + record(.stderr, "e1\nE-frag", at: 2)
        let newer = record(.stderr, "ment\n", at: 3) + record(.stdout, "tial\n", at: 4) + record(.stdout, "x1\nx2\n", at: 5)
            + record(.stderr, "y1\n", at: 6)
        try Data(older).write(to: URL(fileURLWithPath: directory + "/" + LogFileName.name(1)))
        try Data(newer).write(to: URL(fileURLWithPath: directory + "/" + LogFileName.name(2)))
        let reader = LogReader(directory: directory)
        #expect(try reader.lines().map(\.text) == ["a1", "e1", "E-fragment", "A-partial", "x1", "x2", "y1"])
        for count in 1...7 {
            #expect(try reader.tail(count).map(\.text) == Array(try reader.lines().map(\.text).suffix(count)), "tail(\(count))")
        }

        // A stream's first line in the newest file may be whole and the newest line shown.
        try Data(record(.stdout, "o0\n", at: 1)).write(to: URL(fileURLWithPath: directory + "/" + LogFileName.name(1)))
        try Data(record(.stdout, "x1\nx2\nx3\n", at: 2) + record(.stderr, "err\n", at: 3))
            .write(to: URL(fileURLWithPath: directory + "/" + LogFileName.name(2)))
        for count in 1...5 {
            #expect(try reader.tail(count).map(\.text) == Array(try reader.lines().map(\.text).suffix(count)), "tail(\(count))")
        }
        #expect(try reader.lastLines(1, unfinished: false).lines.map(\.text) == ["err"])
    }

    /// Once files were rotated away, the oldest kept may begin in the middle of a line: each
    /// stream's first line there is shown marked partial, by lines() and by a tail reaching it.
    @Test func theOldestFileKeptAfterARotationBeginsWithPartialLines() throws {
        let directory = NSTemporaryDirectory() + "flotilla-logrotated-" + UUID().uuidString
        defer { FileSystem.removeTree(directory) }
        try FileSystem.makeDirectories(directory)
        // File 1 is gone; file 2 begins with the ends of two lines.
        try Data(record(.stdout, "ress\nout\n", at: 1) + record(.stderr, "ail\n", at: 2))
            .write(to: URL(fileURLWithPath: directory + "/" + LogFileName.name(2)))
        let reader = LogReader(directory: directory)
        let lines = try reader.lines()
        #expect(lines.map(\.text) == ["ress", "out", "ail"])
        #expect(lines.map(\.isPartial) == [true, false, true])
        #expect(try reader.tail(3).map(\.isPartial) == [true, false, true])
        #expect(try reader.tail(1).map(\.isPartial) == [true])
    }

    /// A follower starts from the last lines it is asked for, reading back only as far as they
    /// need: not every file kept (up to maxFiles × maxFileBytes, for each follower).
    @Test func lastLinesReadOnlyTheFilesTheyNeed() throws {
        let directory = NSTemporaryDirectory() + "flotilla-loglast-" + UUID().uuidString
        defer { FileSystem.removeTree(directory) }
        try FileSystem.makeDirectories(directory)
        // The oldest file cannot be read at all (a directory in its place): reading it fails.
        try FileSystem.makeDirectories(directory + "/" + LogFileName.name(1))
        try Data(record(.stdout, "b1\nb2\n", at: 1)).write(to: URL(fileURLWithPath: directory + "/" + LogFileName.name(2)))
        let newest = directory + "/" + LogFileName.name(3)
        try Data(record(.stdout, "c1\nc2\nc3\nunfin", at: 2)).write(to: URL(fileURLWithPath: newest))
        let reader = LogReader(directory: directory)
        #expect(throws: SystemCallError.self) { try reader.read(after: nil) }

        var (lines, cursor) = try reader.lastLines(2, unfinished: false)
        #expect(lines.map(\.text) == ["c2", "c3"])
        (lines, cursor) = try reader.lastLines(4, unfinished: false)
        #expect(lines.map(\.text) == ["b2", "c1", "c2", "c3"])
        #expect(try reader.lastLines(0, unfinished: false).lines.isEmpty)
        #expect(try reader.tail(2).map(\.text) == ["c3", "unfin"])
        // The cursor goes on from there: the unfinished line is completed by the next record.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: newest))
        handle.seekToEndOfFile()
        handle.write(Data(record(.stdout, "ished\n", at: 3)))
        try handle.close()
        #expect(try reader.read(after: cursor).0.map(\.text) == ["unfinished"])

        // A line begun before the newest file and unfinished there: a follower starting from
        // the newest file alone would carry only its end, and show that as the whole line.
        try Data(record(.stdout, "b0\nb1\nprog", at: 1)).write(to: URL(fileURLWithPath: directory + "/" + LogFileName.name(2)))
        try Data(record(.stdout, "ress", at: 2)).write(to: URL(fileURLWithPath: newest))
        (lines, cursor) = try reader.lastLines(1, unfinished: false)
        #expect(lines.map(\.text) == ["b1"])
        let more = try FileHandle(forWritingTo: URL(fileURLWithPath: newest))
        more.seekToEndOfFile()
        more.write(Data(record(.stdout, " done\n", at: 3)))
        try more.close()
        #expect(try reader.read(after: cursor).0.map(\.text) == ["progress done"])
    }

    @Test func timestampsRoundTrip() {
        for nanoseconds: Int64 in [0, 1, 951_782_400_123_456_789, 1_795_728_372_972_318_000, 4_102_444_800_000_000_000] {
            let text = LogTimestamp.bytes(nanoseconds)
            #expect(text.count == 30)
            #expect(LogTimestamp.parse(text) == nanoseconds)
        }
        #expect(LogTimestamp.format(951_782_400_123_456_789) == "2000-02-29T00:00:00.123456789Z")
    }
}

/// One record of a log file as the supervisor writes it: header, then the bytes.
private func record(_ stream: LogStream, _ text: String, at time: Int64) -> [UInt8] {
    LogRecordHeader(timestampNanoseconds: time, stream: stream, length: text.utf8.count).bytes + Array(text.utf8)
}
