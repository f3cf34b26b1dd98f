import Glibc

/// The content-addressed blob store: every blob at `<root>/blobs/sha256/<hex>`, written only
/// once its content hashes to that name.
///
/// Writers never lock: each writes a temp file of its own in the same directory, and an atomic
/// `rename` publishes it only after its digest matched. Two writers of one digest both publish
/// the same bytes, so whichever rename comes last leaves the one correct blob.
public struct BlobStore: Sendable {
    /// `<root>/blobs/sha256`, where the blobs and the writers' temp files live.
    public let directory: String

    /// Temp files start with this; garbage collection removes the ones a crash left behind.
    static let temporaryPrefix = ".tmp-"

    /// A store under `root` (the state directory's image root); its directory is created.
    public init(root: String) throws(ImageError) {
        directory = root + "/blobs/sha256"
        try FileSystem.makeDirectories(directory)
    }

    /// The path of a blob, whether or not the store holds it.
    public func path(of digest: Digest) -> String {
        directory + "/" + digest.hex
    }

    /// Whether the store holds the blob.
    public func contains(_ digest: Digest) -> Bool {
        FileSystem.exists(path(of: digest))
    }

    /// The blob's size in bytes.
    public func size(of digest: Digest) throws(ImageError) -> Int64 {
        var info = stat()
        guard lstat(path(of: digest), &info) == 0 else {
            if errno == ENOENT { throw .blobNotFound(digest) }
            throw .lastSystemError("lstat", path(of: digest))
        }
        return Int64(info.st_size)
    }

    /// The blob's whole content (for manifests and configs; layers are read from `path(of:)`).
    public func read(_ digest: Digest) throws(ImageError) -> [UInt8] {
        let path = path(of: digest)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            if errno == ENOENT { throw .blobNotFound(digest) }
            throw .lastSystemError("open", path)
        }
        defer { close(fd) }
        var content: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw .lastSystemError("read", path)
            }
            if count == 0 { return content }
            content.append(contentsOf: buffer[..<count])
        }
    }

    /// Every blob the store holds, by digest; temp files and stray names are not blobs.
    public func list() throws(ImageError) -> [Digest] {
        try FileSystem.names(in: directory).compactMap { name in try? Digest(hex: name) }
    }

    /// Removes a blob; a blob already gone is fine. Callers decide what is unused (`GarbageCollector`).
    public func remove(_ digest: Digest) throws(ImageError) {
        let path = path(of: digest)
        guard unlink(path) == 0 || errno == ENOENT else { throw .lastSystemError("unlink", path) }
        try FileSystem.sync(directory)
    }

    /// Starts writing a blob expected to have `digest`; the writer's `commit` publishes it.
    public func writer(expecting digest: Digest) throws(ImageError) -> BlobWriter {
        try BlobWriter(
            expected: digest,
            temporaryPath: directory + "/" + Self.temporaryPrefix + digest.hex + "-" + FileSystem.uniqueSuffix(),
            finalPath: path(of: digest), directory: directory)
    }

    /// Writes a blob from a stream of chunks (a registry response body) and returns its path.
    /// A blob the store already holds is not written again. On any failure, including a digest
    /// mismatch, nothing is left behind.
    @discardableResult
    public func write<Chunks: AsyncSequence>(_ digest: Digest, from chunks: Chunks) async throws -> String
    where Chunks.Element == [UInt8] {
        if contains(digest) { return path(of: digest) }
        let writer = try writer(expecting: digest)
        do {
            for try await chunk in chunks {
                try writer.append(chunk)
            }
            try writer.commit()
        } catch {
            writer.abandon()
            throw error
        }
        return path(of: digest)
    }
}
