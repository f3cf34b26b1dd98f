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
        // Layers first: a layer is unpacked from its blob, never the other way round.
        for layer in try layers.list() where !inUse.contains(layer) {
            if try isOld(layers.path(of: layer)) {
                try layers.remove(layer)
                report.removedLayers.append(layer)
            }
        }
        for blob in try blobs.list() where !inUse.contains(blob) {
            if try isOld(blobs.path(of: blob)) {
                try blobs.remove(blob)
                report.removedBlobs.append(blob)
            }
        }
        // A blob temp file's mtime moves with every chunk, so only a stalled writer's is old.
        for name in try FileSystem.names(in: blobs.directory) where name.hasPrefix(BlobStore.temporaryPrefix) {
            let path = blobs.directory + "/" + name
            if try isOld(path) {
                try FileSystem.removeTree(path)
                report.removedTemporaries.append(path)
            }
        }
        report.removedTemporaries += try layers.removeLeftovers(isOld: isOld)
        return report
    }
}
