import struct Foundation.Date

/// Removes the blobs and unpacked layers no image in use needs.
///
/// A digest is kept if it is in use, or if it was written within the grace period: a pull in
/// progress has written blobs and layers that no instance references yet. Temp files and
/// directories a crash left behind go after the same grace period.
public struct GarbageCollector: Sendable {
    public let blobs: BlobStore
    public let layers: LayerStore

    public init(blobs: BlobStore, layers: LayerStore) {
        self.blobs = blobs
        self.layers = layers
    }

    /// What one collection removed.
    public struct Report: Sendable, Equatable {
        public var removedBlobs: [Digest] = []
        public var removedLayers: [Digest] = []
        /// Temp files and directories of writes that never finished.
        public var removedTemporaries: [String] = []
        /// What could not be looked at or removed, and why: left for the next collection, while
        /// this one goes on with the rest.
        public var failures: [String] = []
    }

    /// What was last modified (or used) before this is past the grace period.
    public static func cutoff(grace: Duration, now: Date = Date()) -> Date {
        now.addingTimeInterval(-(Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18))
    }

    /// Removes every blob and layer not in `inUse` last modified before `now - grace`.
    /// `inUse` holds every digest the node's images reference: manifests, configs and layers.
    /// The caller must not start new instances from unlisted digests meanwhile.
    public func collect(inUse: Set<Digest>, grace: Duration, now: Date = Date()) throws(ImageError) -> Report {
        let cutoff = Self.cutoff(grace: grace, now: now)
        var report = Report()
        func isOld(_ path: String) throws(ImageError) -> Bool {
            guard let modified = try FileSystem.modificationTime(path) else { return false }
            return modified < cutoff
        }
        // One item that cannot be looked at or removed (a mount left inside a layer, EIO) is
        // reported and left for the next collection: it must not keep every other from going.
        func attempt(_ what: String, _ body: () throws(ImageError) -> Void) {
            do {
                try body()
            } catch {
                report.failures.append("\(what): \(error)")
            }
        }
        // Layers first: a layer is unpacked from its blob, never the other way round.
        for layer in try layers.list() where !inUse.contains(layer) {
            attempt("layer \(layer)") { () throws(ImageError) in
                guard try isOld(layers.path(of: layer)) else { return }
                try layers.remove(layer)
                report.removedLayers.append(layer)
            }
        }
        for blob in try blobs.list() where !inUse.contains(blob) {
            attempt("blob \(blob)") { () throws(ImageError) in
                guard try isOld(blobs.path(of: blob)) else { return }
                try blobs.remove(blob)
                report.removedBlobs.append(blob)
            }
        }
        // A blob temp file's mtime moves with every chunk, so only a stalled writer's is old.
        for name in try FileSystem.names(in: blobs.directory) where name.hasPrefix(BlobStore.temporaryPrefix) {
            let path = blobs.directory + "/" + name
            attempt(path) { () throws(ImageError) in
                guard try isOld(path) else { return }
                try FileSystem.removeTree(path)
                report.removedTemporaries.append(path)
            }
        }
        attempt("leftovers of \(layers.directory)") { () throws(ImageError) in
            let leftovers = try layers.removeLeftovers(isOld: isOld)
            report.removedTemporaries += leftovers.removed
            report.failures += leftovers.failures
        }
        return report
    }
}
