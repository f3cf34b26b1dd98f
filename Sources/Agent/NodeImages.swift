import BlockingWork
import Controller
import Foundation
import ImagePull
import Images
import Logging
import Manifest
import Supervisor
import Synchronization

/// This node's images: pulled for the instances placed here, each instance given an overlay of
/// its image's layers with an upper directory of its own, which goes with the instance; images no
/// instance uses are collected after a grace period.
///
/// Layout under `<state>/images`: the puller's blob store and unpacked layers, and
/// `instances/<id>/` per instance with its overlay (`upper`, `work`, `rootfs`) and `image.json`,
/// the image it runs. Those records are what "in use" means, so that it survives an agent
/// restart with instances still running.
final class NodeImages: Sendable {
    let puller: ImagePuller
    let instancesDirectory: String
    let grace: Duration
    let logger: Logger
    /// Roots being made and collections exclude each other (see `ImageUseGate`).
    let gate = ImageUseGate()

    init(stateDirectory: String, access: RegistryAccess, grace: Duration, logger: Logger) throws {
        let root = stateDirectory + "/images"
        puller = try ImagePuller(root: root, access: access)
        instancesDirectory = root + "/instances"
        try FileManager.default.createDirectory(atPath: instancesDirectory, withIntermediateDirectories: true)
        self.grace = grace
        self.logger = logger
    }

    /// The digest the image's tag names now at its registry.
    func resolve(_ image: ImageName) async throws -> String {
        try await puller.resolve(ImageReference(parsing: image.text)).description
    }

    /// The instance's root made from `image` (pulled and unpacked first when needed), mounted,
    /// with the image's defaults. `progress` hears how the pull goes.
    func prepare(instance id: InstanceID, image: ImageName, progress: @escaping @Sendable (PullProgress) -> Void) async throws -> ImageRootfs {
        let reference = try ImageReference(parsing: image.text)
        await gate.enterPrepare(id)
        defer { gate.leavePrepare(id) }
        let pulled = try await puller.pull(reference, progress: progress)
        let directory = instanceDirectory(id)
        let root = try InstanceRoot(layers: pulled.layers.map { puller.layers.path(of: $0) }, directory: directory)
        // Unmounts, fsyncs and a mount: on a Dispatch thread, off Swift's pool.
        try await BlockingWork.run {
            // A root left mounted by an earlier attempt (an agent killed between mount and
            // launch) is replaced: the instance has not run in it.
            try? root.unmountAndRemove()
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try DurableFile.write(Array(JSONEncoder().encode(pulled)), to: directory + "/image.json")
            try root.mount()
        }
        let config = pulled.config
        return ImageRootfs(
            rootfs: root.rootfs, entrypoint: config.entrypoint ?? [], cmd: config.cmd ?? [], environment: config.env ?? [],
            workingDirectory: config.workingDir, user: config.user)
    }

    /// Unmounts and removes the instance's root, if it has one; its image's grace period starts.
    /// The unmount and the removal of the upper directory can take seconds: on a Dispatch
    /// thread, off Swift's pool.
    func release(instance id: InstanceID) async {
        // Most instances have no root (no image): no thread hop for them.
        guard FileManager.default.fileExists(atPath: instanceDirectory(id)) else { return }
        await BlockingWork.run { self.releaseBlocking(instance: id) }
    }

    private func releaseBlocking(instance id: InstanceID) {
        let directory = instanceDirectory(id)
        guard FileManager.default.fileExists(atPath: directory) else { return }
        let pulled = try? record(at: directory)
        if let pulled { puller.markUsed(pulled.reference) }
        do {
            let layers = pulled?.layers.map { puller.layers.path(of: $0) } ?? []
            if let root = try? InstanceRoot(layers: layers.isEmpty ? ["/"] : layers, directory: directory) {
                try root.unmountAndRemove()
            }
            try FileManager.default.removeItem(atPath: directory)
        } catch {
            logger.error("could not remove an instance's root", metadata: ["instance": "\(id)", "error": "\(error)"])
        }
    }

    /// Removes the roots of instances the supervisor no longer has (left by a crash between a
    /// stop and its cleanup), then the images no instance uses, older than the grace period.
    func collect(keeping: () -> Set<InstanceID>) {
        guard gate.beginCollection() else { return }
        defer { gate.endCollection() }
        // Read inside the gate: a root made after this list was taken outside it would be
        // released as the root of an instance the supervisor does not have.
        let instances = keeping()
        let present = (try? FileManager.default.contentsOfDirectory(atPath: instancesDirectory)) ?? []
        for id in present where !instances.contains(id) { releaseBlocking(instance: id) }
        var inUse: Set<Digest> = []
        for id in (try? FileManager.default.contentsOfDirectory(atPath: instancesDirectory)) ?? [] {
            guard let pulled = try? record(at: instanceDirectory(id)) else { continue }
            inUse.formUnion(pulled.digests)
        }
        do {
            // An image's record goes first (it is what `images` lists), once no instance has used
            // the image for the grace period; its blobs and layers then go with the collector,
            // which keeps whatever a remaining record names.
            let cutoff = GarbageCollector.cutoff(grace: grace)
            var kept = inUse
            var failures: [String] = []
            let records = try puller.recordsForCollection()
            guard records.unreadable.isEmpty else {
                // Whose blobs and layers those are is not known: nothing is removed until they read.
                logger.warning("an image record cannot be read; no unused image is collected until it can", metadata: [
                    "count": "\(records.unreadable.count)", "first": "\(records.unreadable[0])",
                ])
                return
            }
            for image in records.images {
                do {
                    if !inUse.contains(image.manifestDigest), try puller.lastUse(of: image.reference) < cutoff {
                        try puller.removeRecord(of: image.reference)
                        continue
                    }
                } catch {
                    // Kept, with its blobs and layers, until a collection can remove its record.
                    failures.append("image \(image.reference): \(error)")
                }
                kept.formUnion(image.digests)
            }
            inUse = kept
            let report = try GarbageCollector(blobs: puller.blobs, layers: puller.layers).collect(inUse: inUse, grace: grace)
            if !report.removedLayers.isEmpty || !report.removedBlobs.isEmpty {
                logger.info("collected unused images", metadata: [
                    "layers": "\(report.removedLayers.count)", "blobs": "\(report.removedBlobs.count)",
                ])
            }
            failures += report.failures
            if !failures.isEmpty {
                logger.warning("some unused images could not be collected; the next collection tries again", metadata: [
                    "count": "\(failures.count)", "first": "\(failures[0])",
                ])
            }
        } catch {
            logger.error("could not collect unused images", metadata: ["error": "\(error)"])
        }
    }

    /// `collect` on a Dispatch thread: it removes directory trees, unmounts and fsyncs, which
    /// would hold one of the few threads of Swift's pool (two on two cores) meanwhile.
    func collectOffThePool(keeping: @escaping @Sendable () -> Set<InstanceID>) async {
        await BlockingWork.run { self.collect(keeping: keeping) }
    }

    /// Images on this node, with the instances that use each.
    func images() throws -> [(image: PulledImage, instances: [InstanceID])] {
        var users: [Digest: [InstanceID]] = [:]
        for id in (try? FileManager.default.contentsOfDirectory(atPath: instancesDirectory)) ?? [] {
            if let pulled = try? record(at: instanceDirectory(id)) { users[pulled.manifestDigest, default: []].append(id) }
        }
        return try puller.images().map { ($0, (users[$0.manifestDigest] ?? []).sorted()) }
    }

    private func instanceDirectory(_ id: InstanceID) -> String { instancesDirectory + "/" + id }

    private func record(at directory: String) throws -> PulledImage {
        try JSONDecoder().decode(PulledImage.self, from: Data(contentsOf: URL(fileURLWithPath: directory + "/image.json")))
    }
}
