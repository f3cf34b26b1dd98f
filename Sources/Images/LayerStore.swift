import CImages
import Glibc

/// Layers unpacked once each, read-only by convention, at `<root>/layers/sha256/<hex>` (the
/// digest of the layer blob), ready to be overlayfs lower directories.
///
/// Unpacking goes to a temp directory next to the final one, is flushed, and is renamed into
/// place: a layer directory that exists is complete. A per-layer lock file makes concurrent
/// requests for one layer (threads or processes) unpack it once; the others wait and find it.
public struct LayerStore: Sendable {
    /// `<root>/layers/sha256`, with symlinks resolved (see `LayerUnpacker.destination`).
    public let directory: String
    /// Where the layer blobs are read from.
    public let blobs: BlobStore

    static let temporaryPrefix = ".tmp-"
    static let lockSuffix = ".lock"

    /// What `unpack` did.
    public enum UnpackOutcome: Sendable, Equatable {
        /// This call unpacked the layer.
        case unpacked
        /// The layer was already there; nothing was written.
        case alreadyPresent
    }

    /// A store under `root`, reading blobs from `blobs`; its directory is created.
    public init(root: String, blobs: BlobStore) throws(ImageError) {
        let unresolved = root + "/layers/sha256"
        try FileSystem.makeDirectories(unresolved)
        guard let resolved = realpath(unresolved, nil) else { throw .lastSystemError("realpath", unresolved) }
        defer { free(resolved) }
        directory = String(cString: resolved)
        self.blobs = blobs
    }

    /// The unpacked layer's directory, whether or not it exists yet.
    public func path(of layer: Digest) -> String {
        directory + "/" + layer.hex
    }

    /// Whether the layer is unpacked.
    public func contains(_ layer: Digest) -> Bool {
        FileSystem.exists(path(of: layer))
    }

    /// Every unpacked layer; temp directories and lock files are not layers.
    public func list() throws(ImageError) -> [Digest] {
        try FileSystem.names(in: directory).compactMap { name in try? Digest(hex: name) }
    }

    /// Unpacks the layer blob `layer` from the blob store, unless it already is.
    @discardableResult
    public func unpack(_ layer: Digest) throws(ImageError) -> UnpackOutcome {
        let final = path(of: layer)
        if FileSystem.exists(final) { return .alreadyPresent }
        guard blobs.contains(layer) else { throw .blobNotFound(layer) }
        let lock = try FileLock(path: final + Self.lockSuffix)
        // Whoever held the lock before us may have unpacked it meanwhile.
        if FileSystem.exists(final) { return .alreadyPresent }

        let temporary = directory + "/" + Self.temporaryPrefix + layer.hex + "-" + FileSystem.uniqueSuffix()
        guard mkdir(temporary, 0o755) == 0 else { throw .lastSystemError("mkdir", temporary) }
        do throws(ImageError) {
            try LayerUnpacker(layer: layer, archivePath: blobs.path(of: layer), destination: temporary).unpack()
            try Self.syncFileSystem(temporary)
            // The layer directory's own mtime says when it was unpacked, which is what the
            // garbage collector's grace period is measured from (entries keep the layer's times).
            guard utimensat(AT_FDCWD, temporary, nil, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw ImageError.lastSystemError("utimensat", temporary)
            }
            guard rename(temporary, final) == 0 else { throw ImageError.lastSystemError("rename", final) }
            try FileSystem.sync(directory)
        } catch {
            try? FileSystem.removeTree(temporary)
            throw error
        }
        _ = consume lock
        return .unpacked
    }

    /// Removes an unpacked layer, under its lock so that it never races an unpack of it.
    /// Callers decide what is unused (`GarbageCollector`); a mounted layer must not be removed.
    public func remove(_ layer: Digest) throws(ImageError) {
        let final = path(of: layer)
        let lock = try FileLock(path: final + Self.lockSuffix)
        // Renamed away first, so that the layer's path never names a half-removed tree.
        let doomed = directory + "/" + Self.temporaryPrefix + "removing-" + layer.hex + "-" + FileSystem.uniqueSuffix()
        if rename(final, doomed) != 0 {
            guard errno == ENOENT else { throw .lastSystemError("rename", final) }
        } else {
            try FileSystem.sync(directory)
            try FileSystem.removeTree(doomed)
        }
        lock.unlinkAndUnlock()
    }

    /// Removes the temp directories of unpacks and removals that never finished, and lock files
    /// of layers that are not there, each under its layer's lock: an unpack in progress holds
    /// that lock, so its temp directory is never taken from under it. Returns the paths removed.
    func removeLeftovers(isOld: (String) throws(ImageError) -> Bool) throws(ImageError) -> (removed: [String], failures: [String]) {
        var removed: [String] = []
        var failures: [String] = []
        for name in try FileSystem.names(in: directory) {
            let path = directory + "/" + name
            // Each on its own: one that cannot go (a mount inside) must not keep the rest.
            do throws(ImageError) {
                guard let layer = Self.layerOfLeftover(name), try isOld(path) else { continue }
                let lock = try FileLock(path: self.path(of: layer) + Self.lockSuffix)
                if name.hasSuffix(Self.lockSuffix) {
                    if !contains(layer) {
                        lock.unlinkAndUnlock()
                        removed.append(path)
                    }
                } else {
                    try FileSystem.removeTree(path)
                    removed.append(path)
                }
            } catch {
                failures.append("\(path): \(error)")
            }
        }
        return (removed, failures)
    }

    /// The layer a temp directory (`.tmp-<hex>-…`, `.tmp-removing-<hex>-…`) or a lock file
    /// (`<hex>.lock`) belongs to; nil for a layer or a name the store did not make.
    static func layerOfLeftover(_ name: String) -> Digest? {
        var rest = Substring(name)
        if rest.hasSuffix(lockSuffix) {
            rest = rest.dropLast(lockSuffix.count)
        } else if rest.hasPrefix(temporaryPrefix) {
            rest = rest.dropFirst(temporaryPrefix.count)
            if rest.hasPrefix("removing-") { rest = rest.dropFirst("removing-".count) }
            rest = rest.prefix(64)
        } else {
            return nil
        }
        return try? Digest(hex: String(rest))
    }

    /// Flushes every file the unpack wrote with one `syncfs` on their filesystem, rather than
    /// an fsync per file: a layer has thousands of files, all on the store's filesystem.
    private static func syncFileSystem(_ path: String) throws(ImageError) {
        let fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw .lastSystemError("open", path) }
        defer { close(fd) }
        guard fl_images_syncfs(fd) == 0 else { throw .lastSystemError("syncfs", path) }
    }
}
