import AsyncHTTPClient
import BlockingWork
import Foundation
import Images
import NIOCore
import Synchronization

/// Pulls images from registries into this node's image store (`Images`): index → this node's
/// platform manifest → config and layers, every blob checked against its digest while it
/// streams, each layer unpacked once, and a record of the image kept under
/// `<root>/pulled/` so that `images()` lists it.
public final class ImagePuller: Sendable {
    /// The image store's root (the state directory's `images`).
    public let root: String
    let client: RegistryClient
    /// The blobs pulled, by digest.
    public let blobs: BlobStore
    /// The layers unpacked from them.
    public let layers: LayerStore
    private let ownsHTTPClient: Bool
    private let blobFlights = SingleFlight<Digest>()
    private let unpackFlights = SingleFlight<Digest>()

    /// A puller storing under `root`. With `httpClient` nil it makes one of its own, trusting
    /// `access.caFile`; `shutdown()` shuts that down. A given client must trust the registries
    /// already (its TLS configuration is its own).
    public init(root: String, access: RegistryAccess, httpClient: HTTPClient? = nil, retry: RetryPolicy = RetryPolicy()) throws {
        self.root = root
        blobs = try BlobStore(root: root)
        layers = try LayerStore(root: root, blobs: blobs)
        ownsHTTPClient = httpClient == nil
        client = RegistryClient(http: httpClient ?? RegistryClient.makeHTTPClient(access: access), access: access, retry: retry)
        do {
            try FileManager.default.createDirectory(atPath: recordsDirectory, withIntermediateDirectories: true)
        } catch {
            throw ImagePullError.store(reference: nil, .system(call: "mkdir", path: recordsDirectory, errno: EIO))
        }
        // A record's write cut short by a crash leaves its hidden temporary: never read, never
        // collected otherwise.
        DurableFile.removeLeftovers(in: recordsDirectory)
    }

    /// Shuts down the HTTP client this puller made (not one it was given). Call it once, last.
    public func shutdown() async throws {
        if ownsHTTPClient { try await client.http.shutdown() }
    }

    // MARK: Resolving

    /// The digest of the manifest or index `reference` names, by `HEAD` (falling back to `GET`
    /// and hashing when the registry sends no `Docker-Content-Digest`). A pinned reference is
    /// checked to exist and its digest returned.
    public func resolve(_ reference: ImageReference) async throws -> Digest {
        try await client.withRetries(reference) { _ in
            let response = try await client.send(
                reference, method: .HEAD, path: "manifests/\(reference.manifestReference)",
                headers: [("Accept", MediaType.manifestAccept.joined(separator: ", "))])
            try await client.check(response, reference, subject: nil, unknown: "manifest unknown")
            if let header = response.headers.first(name: "Docker-Content-Digest"), let digest = try? Digest(parsing: header) {
                if let pinned = reference.digest, pinned != digest {
                    throw ImagePullError.digestMismatch(reference: reference, kind: "manifest", expected: pinned, actual: digest)
                }
                return digest
            }
            return try await fetchManifest(reference, manifestReference: reference.manifestReference, expected: reference.digest).digest
        }
    }

    // MARK: Pulling

    /// Pulls `reference` (see the type's summary) and returns the recorded image. Blobs already
    /// in the store are not fetched; transient failures are retried, a partly downloaded blob
    /// resumed with `Range` where the registry allows; concurrent pulls of one blob run once.
    /// A reference pinned to a digest whose image is whole on this node is not asked of the
    /// registry at all (Docker's and Nomad's pull-if-missing): its bytes cannot have changed, and
    /// an instance restarted or replaced on this node must not need the registry to be up.
    public func pull(
        _ reference: ImageReference, progress: @escaping @Sendable (PullProgress) -> Void = { _ in }
    ) async throws -> PulledImage {
        if let local = localImage(pinnedBy: reference) {
            progress(PullProgress(reference: local.reference, digest: nil, phase: .done, bytesDone: local.size, bytesTotal: local.size))
            return local
        }
        progress(PullProgress(reference: reference, digest: nil, phase: .resolving, bytesDone: 0, bytesTotal: 0))
        let top = try await client.withRetries(reference) { _ in
            try await fetchManifest(reference, manifestReference: reference.manifestReference, expected: reference.digest)
        }
        let pinned = reference.pinned(to: top.digest)
        var manifestDigest = top.digest
        var manifestBytes = top.bytes
        var manifest: OCIManifest
        var fromIndex = false
        switch top.document {
        case .manifest(let single):
            manifest = single
        case .index(let index):
            let entry = try selectPlatform(index, pinned)
            let platformManifest = try await client.withRetries(pinned) { _ in
                try await fetchManifest(pinned, manifestReference: entry.digest.description, expected: entry.digest)
            }
            guard case .manifest(let chosen) = platformManifest.document else {
                throw ImagePullError.invalidManifest(
                    reference: pinned, digest: entry.digest, reason: "the index's entry for \(entry.platform?.text ?? "") is not an image manifest")
            }
            try storeDocument(top.bytes, digest: top.digest, pinned)
            manifest = chosen
            manifestDigest = platformManifest.digest
            manifestBytes = platformManifest.bytes
            fromIndex = true
        }
        try validate(manifest, manifestDigest, pinned)
        try storeDocument(manifestBytes, digest: manifestDigest, pinned)

        // The config first: it is small and says whether the image is for this platform.
        try await fetchBlob(manifest.config, kind: "config", pinned, progress)
        let configBytes: [UInt8]
        do { configBytes = try blobs.read(manifest.config.digest) } catch { throw ImagePullError.store(reference: pinned, error) }
        guard let config = try? JSONDecoder().decode(OCIImageConfig.self, from: Data(configBytes)) else {
            throw ImagePullError.invalidManifest(reference: pinned, digest: manifest.config.digest, reason: "the image config is not valid JSON")
        }
        if !fromIndex, let os = config.os, let architecture = config.architecture,
           os != client.access.os || architecture != client.access.architecture {
            throw ImagePullError.platformMismatch(
                reference: pinned, wanted: client.access.os + "/" + client.access.architecture, image: os + "/" + architecture)
        }

        try await withThrowingTaskGroup(of: Void.self) { group in
            for layer in manifest.layers {
                group.addTask { try await self.fetchBlob(layer, kind: "layer", pinned, progress) }
            }
            try await group.waitForAll()
        }
        // Bottom to top; each layer once, whoever else is unpacking it.
        for layer in manifest.layers {
            progress(PullProgress(reference: pinned, digest: layer.digest, phase: .unpacking, bytesDone: layer.size, bytesTotal: layer.size))
            do {
                try await unpackFlights.run(layer.digest) { [layers] in
                    // Unpacking waits on a file lock and writes thousands of files.
                    try await BlockingWork.run { () throws(ImageError) in _ = try layers.unpack(layer.digest) }
                }
            } catch let error as ImageError {
                throw ImagePullError.store(reference: pinned, error)
            }
        }

        let execution = config.config
        let image = PulledImage(
            reference: pinned, manifestDigest: manifestDigest, configDigest: manifest.config.digest,
            layers: manifest.layers.map(\.digest),
            config: ImageConfig(
                entrypoint: execution?.Entrypoint, cmd: execution?.Cmd, env: execution?.Env,
                workingDir: execution?.WorkingDir, user: execution?.User),
            size: manifest.config.size + manifest.layers.reduce(0) { $0 + $1.size })
        try record(image)
        progress(PullProgress(reference: pinned, digest: nil, phase: .done, bytesDone: image.size, bytesTotal: image.size))
        return image
    }

    /// The index entry for this node: `os` and `architecture` equal (OCI image-spec "Image
    /// Index", platform), the first such when several (variants) are listed.
    private func selectPlatform(_ index: OCIIndex, _ reference: ImageReference) throws -> OCIDescriptor {
        let access = client.access
        let candidates = index.manifests.filter { $0.platform?.os == access.os && $0.platform?.architecture == access.architecture }
        if let entry = candidates.first(where: { MediaType.manifestTypes.contains($0.mediaType) }) { return entry }
        throw ImagePullError.platformNotFound(
            reference: reference, wanted: access.os + "/" + access.architecture,
            available: index.manifests.compactMap { $0.platform?.text }.filter { $0 != "unknown/unknown" })
    }

    /// Refuses what we cannot pull before fetching anything big: foreign layers, unknown types.
    private func validate(_ manifest: OCIManifest, _ digest: Digest, _ reference: ImageReference) throws {
        guard MediaType.configTypes.contains(manifest.config.mediaType) else {
            throw ImagePullError.unsupportedMediaType(
                reference: reference, digest: manifest.config.digest, mediaType: manifest.config.mediaType,
                reason: "not an image config (an artifact, not a runnable image?)")
        }
        for layer in manifest.layers {
            if MediaType.foreignLayerTypes.contains(layer.mediaType) || layer.urls?.isEmpty == false {
                throw ImagePullError.unsupportedMediaType(
                    reference: reference, digest: layer.digest, mediaType: layer.mediaType,
                    reason: "non-distributable (foreign) layers are not pulled")
            }
            guard MediaType.layerTypes.contains(layer.mediaType) else {
                throw ImagePullError.unsupportedMediaType(
                    reference: reference, digest: layer.digest, mediaType: layer.mediaType,
                    reason: "not a layer type we unpack (tar, tar+gzip, tar+zstd)")
            }
        }
    }

    // MARK: Manifests

    struct FetchedManifest {
        var bytes: [UInt8]
        var digest: Digest
        var document: ManifestDocument
    }

    /// GETs a manifest or index, hashes it, and checks it against `expected` when pinned.
    private func fetchManifest(_ reference: ImageReference, manifestReference: String, expected: Digest?) async throws -> FetchedManifest {
        let response = try await client.send(
            reference, method: .GET, path: "manifests/\(manifestReference)",
            headers: [("Accept", MediaType.manifestAccept.joined(separator: ", "))])
        try await client.check(response, reference, subject: expected.map { "manifest \($0)" }, unknown: "manifest unknown")
        let bytes: [UInt8]
        do {
            bytes = Array(try await response.body.collect(upTo: 4 << 20).readableBytesView)
        } catch let error as NIOTooManyBytesError {
            throw ImagePullError.invalidManifest(reference: reference, digest: expected, reason: "manifest larger than 4 MiB (\(error))")
        } catch {
            throw client.classify(error, reference)
        }
        let digest = Digest.of(bytes)
        // By tag, the digest the registry announces (Docker-Content-Digest) is the one the bytes
        // must have, as containerd checks: a registry whose storage or cache serves other bytes
        // under it is refused, rather than its bytes believed and recorded as the tag's image.
        let announced = expected ?? response.headers.first(name: "Docker-Content-Digest").flatMap { try? Digest(parsing: $0) }
        if let announced, announced != digest {
            throw ImagePullError.digestMismatch(reference: reference, kind: "manifest", expected: announced, actual: digest)
        }
        let (document, mediaType) = ManifestDocument.decode(bytes, contentType: response.headers.first(name: "Content-Type"))
        guard let document else {
            if MediaType.indexTypes.contains(mediaType) || MediaType.manifestTypes.contains(mediaType) {
                throw ImagePullError.invalidManifest(reference: reference, digest: digest, reason: "\(mediaType) that does not decode")
            }
            throw ImagePullError.unsupportedMediaType(
                reference: reference, digest: digest, mediaType: mediaType,
                reason: "not an OCI index or manifest, nor Docker schema 2 (schema 1 is not pulled)")
        }
        return FetchedManifest(bytes: bytes, digest: digest, document: document)
    }

    /// Keeps a manifest or index in the blob store, for garbage collection's accounting and
    /// for pulls on this node that name it by digest.
    private func storeDocument(_ bytes: [UInt8], digest: Digest, _ reference: ImageReference) throws {
        guard !blobs.contains(digest) else { return }
        do {
            let writer = try blobs.writer(expecting: digest)
            try writer.append(bytes)
            try writer.commit()
        } catch {
            throw ImagePullError.store(reference: reference, error)
        }
    }

    // MARK: Blobs

    /// Fetches a blob into the store unless it is there, once however many pulls want it.
    private func fetchBlob(
        _ descriptor: OCIDescriptor, kind: String, _ reference: ImageReference, _ progress: @escaping @Sendable (PullProgress) -> Void
    ) async throws {
        if blobs.contains(descriptor.digest) { return }
        try await blobFlights.run(descriptor.digest, ownAttemptAfterOthersFail: true) {
            if self.blobs.contains(descriptor.digest) { return }
            try await self.download(descriptor, kind: kind, reference, progress)
        }
    }

    /// Streams a blob into a `BlobWriter` (hashing as it goes). When the body breaks off, the
    /// next attempt asks for the rest with `Range`; a registry that answers 200 instead of 206
    /// sends it all again, into a fresh writer. Nothing is left behind on failure.
    private func download(
        _ descriptor: OCIDescriptor, kind: String, _ reference: ImageReference, _ progress: @escaping @Sendable (PullProgress) -> Void
    ) async throws {
        let digest = descriptor.digest
        func newWriter() throws -> BlobWriter {
            do { return try blobs.writer(expecting: digest) } catch { throw ImagePullError.store(reference: reference, error) }
        }
        var writer = try newWriter()
        defer { writer.abandon() }
        let subject = "\(kind) \(digest)"
        func report(_ phase: PullProgress.Phase) {
            progress(PullProgress(reference: reference, digest: digest, phase: phase, bytesDone: writer.byteCount, bytesTotal: descriptor.size))
        }
        try await client.withRetries(reference) { _ in
            let resumeAt = writer.byteCount
            var headers = [("Accept", "*/*")]
            if resumeAt > 0 { headers.append(("Range", "bytes=\(resumeAt)-")) }
            let response = try await client.send(
                reference, method: .GET, path: "blobs/\(digest)", headers: headers, deadline: .now() + .hours(6))
            if resumeAt > 0 && response.status != .partialContent && response.status == .ok {
                writer.abandon()
                writer = try newWriter()
            } else {
                try await client.check(response, reference, subject: subject, unknown: "blob unknown")
            }
            // A 206 must go on from where the download stopped (RFC 9110 §14.4): content from
            // another offset, appended, would make a blob that fails its digest at the end, with
            // nothing left to retry. Started over instead, without a Range.
            if response.status == .partialContent {
                let contentRange = response.headers.first(name: "Content-Range") ?? ""
                guard Self.firstByte(ofContentRange: contentRange) == Int(resumeAt) else {
                    writer.abandon()
                    writer = try newWriter()
                    throw TransientFailure(
                        reason: "\(subject): asked for bytes from \(resumeAt), the registry answered '\(contentRange)'; starting over")
                }
            }
            report(.downloading)
            do {
                for try await buffer in response.body {
                    try writer.append(Array(buffer.readableBytesView))
                    guard writer.byteCount <= descriptor.size else {
                        throw ImagePullError.invalidManifest(
                            reference: reference, digest: digest,
                            reason: "\(kind) is larger than the \(descriptor.size) bytes its descriptor says")
                    }
                    report(.downloading)
                }
            } catch let error as ImageError {
                throw ImagePullError.store(reference: reference, error)
            } catch {
                throw client.classify(error, reference)
            }
            // The body ended early without an error: the rest on the next attempt.
            guard writer.byteCount == descriptor.size else {
                throw TransientFailure(reason: "\(subject): body ended at \(writer.byteCount) of \(descriptor.size) bytes")
            }
        }
        report(.verifying)
        do {
            try writer.commit()
        } catch .digestMismatch(let expected, let actual) {
            throw ImagePullError.digestMismatch(reference: reference, kind: kind, expected: expected, actual: actual)
        } catch {
            throw ImagePullError.store(reference: reference, error)
        }
    }

    /// The first byte of a `Content-Range: bytes FIRST-LAST/LENGTH`; nil when it is not one.
    static func firstByte(ofContentRange value: String) -> Int? {
        // The unit is case-insensitive (RFC 9110 §14.1).
        guard value.lowercased().hasPrefix("bytes "), let dash = value.firstIndex(of: "-") else { return nil }
        return Int(value[value.index(value.startIndex, offsetBy: 6)..<dash].trimmingCharacters(in: .whitespaces))
    }

    // MARK: Records

    private var recordsDirectory: String { root + "/pulled" }

    private func recordPath(_ reference: ImageReference) -> String {
        recordsDirectory + "/" + Digest.of(Array(reference.description.utf8)).hex + ".json"
    }

    /// Writes the image's record (temp file, fsync, rename, directory fsync: a record that
    /// exists is whole, after a power cut too).
    private func record(_ image: PulledImage) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let path = recordPath(image.reference)
        do {
            try DurableFile.write(Array(try encoder.encode(image)), to: path)
        } catch let error as ImageError {
            throw ImagePullError.store(reference: image.reference, error)
        }
    }

    /// The image `reference` names when it is pinned to a digest and recorded here with its
    /// config and every layer present (a record is written only after them, and a collection
    /// keeps what a record names: the check is for a store damaged by hand).
    private func localImage(pinnedBy reference: ImageReference) -> PulledImage? {
        guard reference.digest != nil,
              let data = try? Data(contentsOf: URL(fileURLWithPath: recordPath(reference))),
              let image = try? JSONDecoder().decode(PulledImage.self, from: data),
              image.reference == reference, blobs.contains(image.configDigest), image.layers.allSatisfy(layers.contains)
        else { return nil }
        return image
    }

    /// The images recorded on this node, by reference.
    public func images() throws -> [PulledImage] {
        // A listing shows what it can read: a record that cannot be read is left out here (a
        // collection, which must not, looks at them itself).
        ((try? recordsForCollection().images) ?? []).sorted { $0.reference.description < $1.reference.description }
    }

    /// Every image record, and the names of those that could not be read or decoded: what a
    /// collection must know before it removes anything (an unreadable record's blobs and layers
    /// are not known to be unused). A records directory that cannot be listed throws; one that
    /// is not there holds no records.
    public func recordsForCollection() throws -> (images: [PulledImage], unreadable: [String]) {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: recordsDirectory)
        } catch CocoaError.fileReadNoSuchFile {
            return ([], [])
        }
        let decoder = JSONDecoder()
        var images: [PulledImage] = []
        var unreadable: [String] = []
        for name in names where name.hasSuffix(".json") && !name.hasPrefix(".") {
            do {
                images.append(try decoder.decode(PulledImage.self, from: Data(contentsOf: URL(fileURLWithPath: recordsDirectory + "/" + name))))
            } catch {
                unreadable.append("\(name): \(error)")
            }
        }
        return (images, unreadable)
    }

    /// When an instance last used the image (`markUsed`), else when it was pulled: what a
    /// garbage collection's grace period counts from.
    public func lastUse(of reference: ImageReference) throws -> Date {
        let path = recordPath(reference)
        guard let date = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date else {
            throw ImagePullError.store(reference: reference, .system(call: "stat", path: path, errno: ENOENT))
        }
        return date
    }

    /// Records that an instance used the image until now (its record's mtime).
    public func markUsed(_ reference: ImageReference) {
        _ = utimensat(AT_FDCWD, recordPath(reference), nil, 0)
    }

    /// Removes an image's record (its blobs and layers go with garbage collection once no
    /// record or instance uses them). `reference` is the pinned one `pull` returned.
    public func removeRecord(of reference: ImageReference) throws {
        let path = recordPath(reference)
        guard unlink(path) == 0 || errno == ENOENT else {
            throw ImagePullError.store(reference: reference, .system(call: "unlink", path: path, errno: errno))
        }
    }
}

/// Concurrent requests for one key run one operation: the first caller starts it, later callers
/// wait for its outcome (in-process; across processes the stores' own locks and renames hold).
/// A caller cancelled while it waits stops waiting at once; the operation goes on for the others
/// (and, if none is left, to its end: a blob half downloaded is kept for the next pull).
actor SingleFlight<Key: Hashable & Sendable> {
    private var running: [Key: Task<Void, any Error>] = [:]

    /// With `ownAttemptAfterOthersFail`, a flight that fails fails its own caller only: a caller
    /// that joined it then joins the flight another waiter started since, or starts its own
    /// (shared in turn), so that each caller's own operation runs at most once. For downloads:
    /// one blob digest can be pulled from two repositories or registries, and the first may
    /// refuse it (a 404, credentials that do not reach it) where the second would serve it.
    /// Without it, as for unpacking, which does the same for every caller, all get the one
    /// failure.
    func run(_ key: Key, ownAttemptAfterOthersFail: Bool = false, _ operation: @escaping @Sendable () async throws -> Void) async throws {
        var joined = running[key]
        while let task = joined {
            do {
                return try await Self.outcome(of: task)
            } catch {
                try Task.checkCancellation()
                guard ownAttemptAfterOthersFail else { throw error }
                // The failed flight may still be registered (its end not yet seen here).
                joined = running[key].flatMap { $0 == task ? nil : $0 }
            }
        }
        // A caller cancelled by now would start an operation nobody waits for.
        try Task.checkCancellation()
        let task = Task { try await operation() }
        running[key] = task
        // Registered until it ends, whether its starter still waits or not: a caller coming
        // meanwhile joins it rather than starting the same operation again.
        Task {
            _ = await task.result
            await self.ended(key, task)
        }
        try await Self.outcome(of: task)
    }

    private func ended(_ key: Key, _ task: Task<Void, any Error>) {
        // Only its own: a caller that saw this flight fail may have registered the next one.
        if running[key] == task { running[key] = nil }
    }

    /// `task`'s outcome, or CancellationError as soon as the caller is cancelled
    /// (`task.value` waits for the task whatever happens to its waiter).
    private static func outcome(of task: Task<Void, any Error>) async throws {
        let waiter = Waiter()
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                waiter.continuation.withLock { $0 = continuation }
                if Task.isCancelled {
                    waiter.resume(with: .failure(CancellationError()))
                } else {
                    Task { waiter.resume(with: await task.result) }
                }
            }
        } onCancel: {
            waiter.resume(with: .failure(CancellationError()))
        }
    }

    /// One wait's continuation, resumed by whichever comes first: the outcome or a cancellation.
    private final class Waiter: Sendable {
        let continuation = Mutex<CheckedContinuation<Void, any Error>?>(nil)

        func resume(with result: Result<Void, any Error>) {
            continuation.withLock { $0.take() }?.resume(with: result)
        }
    }
}
