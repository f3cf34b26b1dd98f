import Foundation
import Testing

@testable import Images

@Suite("BlobStore", .timeLimit(.minutes(2)))
struct BlobStoreTests {
    let content = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7) }

    @Test("a blob written in chunks is read back, sized, listed and removed")
    func roundTrip() async throws {
        try await withTestDirectory { directory in
            let (blobs, _) = try directory.stores()
            let digest = Digest.of(content)
            #expect(!blobs.contains(digest))
            try await blobs.write(digest, from: chunks(of: content, size: 4096))
            #expect(blobs.contains(digest))
            #expect(try blobs.read(digest) == content)
            #expect(try blobs.size(of: digest) == Int64(content.count))
            #expect(try blobs.list() == [digest])
            #expect(try temporaries(in: blobs.directory).isEmpty)
            try blobs.remove(digest)
            #expect(try blobs.list().isEmpty)
            #expect(throws: ImageError.blobNotFound(digest)) { try blobs.read(digest) }
        }
    }

    @Test("content with another digest is refused and leaves nothing behind")
    func mismatch() async throws {
        try await withTestDirectory { directory in
            let (blobs, _) = try directory.stores()
            let expected = Digest.of(Array("something else".utf8))
            let error = await #expect(throws: ImageError.self) {
                try await blobs.write(expected, from: chunks(of: content, size: 4096))
            }
            #expect(
                error?.description == "digest mismatch: expected \(expected), got \(Digest.of(content))")
            #expect(try FileSystem.names(in: blobs.directory).isEmpty)
        }
    }

    @Test("concurrent writers of one digest end with the one correct blob and no temp files")
    func concurrentWriters() async throws {
        try await withTestDirectory { directory in
            let (blobs, _) = try directory.stores()
            let digest = Digest.of(content)
            let content = self.content
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        // Each writer goes through its own temp file, as a puller with
                        // the blob already half-written by another would.
                        let writer = try blobs.writer(expecting: digest)
                        for start in stride(from: 0, to: content.count, by: 10_000) {
                            try writer.append(Array(content[start..<min(start + 10_000, content.count)]))
                            await Task.yield()
                        }
                        try writer.commit()
                    }
                }
                try await group.waitForAll()
            }
            #expect(try FileSystem.names(in: blobs.directory) == [digest.hex])
            #expect(try blobs.read(digest) == content)
        }
    }
}
