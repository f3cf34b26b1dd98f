import Foundation
import Glibc
import Images
import Synchronization
import Testing
import TestSupport
import RegistryTestSupport

@testable import ImagePull

let isRoot = getuid() == 0

/// Pulls from a real docker-registry on loopback over TLS (`TestRegistry`), each test with a
/// registry and a store of its own. Root: unpacking makes overlay whiteouts (mknod) and chowns.
@Suite(.dedicatedThread, .enabled(if: isRoot, "needs root: unpacking layers mknods whiteouts and chowns"), .timeLimit(.minutes(10)))  // the limit also covers waiting for a dedicated-thread slot under the full suite
struct PullTests {
    /// A store under a temp dir and a puller trusting the registry's CA, both gone after `body`.
    func withPuller(
        _ registry: TestRegistry, credentialsFile: String? = nil, architecture: String = "amd64",
        retry: RetryPolicy = RetryPolicy(attempts: 3, initialDelay: .milliseconds(100)),
        plainHTTPOnLoopback: Bool = true, plainHTTPRegistries: [String] = [],
        _ body: (ImagePuller, String) async throws -> Void
    ) async throws {
        let root = registry.directory + "/store-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        var access = RegistryAccess(caFile: registry.caFile, credentialsFile: credentialsFile, architecture: architecture)
        access.plainHTTPOnLoopback = plainHTTPOnLoopback
        access.plainHTTPRegistries = plainHTTPRegistries
        let puller = try ImagePuller(root: root, access: access, retry: retry)
        do {
            try await body(puller, root)
        } catch {
            try await puller.shutdown()
            throw error
        }
        try await puller.shutdown()
    }

    /// A `Retry-After` HTTP-date `seconds` ahead, cut to whole seconds (so up to a second
    /// sooner), and the instant of this process's clock it names: a client that honours it asks
    /// again no earlier, however late its first request went out.
    static func httpDate(secondsAhead seconds: Int) -> (text: String, instant: ContinuousClock.Instant) {
        let (now, clock) = (Date(), ContinuousClock.now)
        let date = Date(timeIntervalSince1970: (now.timeIntervalSince1970 + Double(seconds)).rounded(.down))
        return (httpDate(date), clock + .milliseconds(Int64(date.timeIntervalSince(now) * 1000)))
    }

    /// `date` as a `Retry-After` HTTP-date (IMF-fixdate, whole seconds).
    static func httpDate(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter.string(from: date)
    }

    @Test func pulls_and_unpacks_busybox_over_tls() async throws {
        try await withRegistry { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()])
            let pushed = try await registry.push(image, to: "team/busybox", tag: "1.0")
            try await withPuller(registry) { puller, root in
                let reference = try ImageReference(parsing: "\(registry.host)/team/busybox:1.0")
                let phases = Locked<[PullProgress.Phase]>([])
                let pulled = try await puller.pull(reference) { report in phases.withLock { $0.append(report.phase) } }
                #expect(pulled.reference == reference.pinned(to: pushed))
                #expect(pulled.manifestDigest == pushed)
                #expect(pulled.configDigest == image.configDigest)
                #expect(pulled.layers == image.layerDigests)
                #expect(pulled.config.entrypoint == ["/bin/sh"])
                #expect(pulled.config.env == ["PATH=/bin"])
                #expect(pulled.size == Int64(image.config.count + image.layers[0].count))
                let busybox = root + "/layers/sha256/\(image.layerDigests[0].hex)/bin/busybox"
                let attributes = try FileManager.default.attributesOfItem(atPath: busybox)
                let original = try FileManager.default.attributesOfItem(atPath: "/bin/busybox")
                #expect(attributes[.size] as? Int == original[.size] as? Int)
                #expect(try FileManager.default.destinationOfSymbolicLink(atPath: root + "/layers/sha256/\(image.layerDigests[0].hex)/bin/sh") == "busybox")
                #expect(phases.withLock { $0.first == .resolving && $0.last == .done && $0.contains(.unpacking) })
                #expect(try puller.images() == [pulled])
                // The config is in the store: a second pull fetches nothing.
                let before = registry.requestCount("GET", "/v2/team/busybox/blobs/\(image.layerDigests[0])")
                #expect(try await puller.pull(reference) == pulled)
                #expect(registry.requestCount("GET", "/v2/team/busybox/blobs/\(image.layerDigests[0])") == before)
                try puller.removeRecord(of: pulled.reference)
                #expect(try puller.images() == [])
            }
        }
    }

    @Test func resolves_a_tag_to_the_digest_skopeo_reports() async throws {
        try await withRegistry { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()], docker: true)
            try await registry.push(image, to: "web", tag: "1.4")
            try await withPuller(registry) { puller, _ in
                let resolved = try await puller.resolve(try ImageReference(parsing: "\(registry.host)/web:1.4"))
                let certificates = registry.directory + "/skopeo-certs"
                try FileManager.default.createDirectory(atPath: certificates, withIntermediateDirectories: true)
                try FileManager.default.copyItem(atPath: registry.caFile, toPath: certificates + "/ca.crt")
                let skopeo = try runTool("/usr/bin/skopeo", [
                    "inspect", "--cert-dir", certificates, "--format", "{{.Digest}}", "docker://\(registry.host)/web:1.4",
                ])
                #expect(resolved.description == skopeo.trimmingCharacters(in: .whitespacesAndNewlines))
                #expect(resolved == image.manifestDigest)
                await #expect {
                    try await puller.resolve(try ImageReference(parsing: "\(registry.host)/web:9.9"))
                } throws: { error in
                    "\(error)" == "pull \(registry.host)/web:9.9: manifest unknown (HTTP 404)"
                }
            }
        }
    }

    @Test func pulls_by_pinned_digest() async throws {
        try await withRegistry { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()])
            let digest = try await registry.push(image, to: "pinned", tag: nil)
            try await withPuller(registry) { puller, _ in
                let reference = try ImageReference(parsing: "\(registry.host)/pinned@\(digest)")
                #expect(try await puller.resolve(reference) == digest)
                let pulled = try await puller.pull(reference)
                #expect(pulled.reference == reference)
                #expect(pulled.reference.tag == nil)
                #expect(pulled.manifestDigest == digest)
                // A digest the registry does not have.
                let other = Digest.of(Array("no such manifest".utf8))
                await #expect {
                    try await puller.pull(try ImageReference(parsing: "\(registry.host)/pinned@\(other)"))
                } throws: { error in
                    "\(error)".contains("manifest unknown")
                }
            }
        }
    }

    /// An image pinned by digest and whole on this node starts without its registry (Docker's
    /// and Nomad's pull-if-missing): before, every pull asked the registry for the manifest, so
    /// with the registry down no instance of an image already here could be started or replaced.
    /// A tag can move: it is still asked.
    @Test func a_pinned_image_already_here_is_not_asked_of_the_registry() async throws {
        try await withRegistry { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()])
            let digest = try await registry.push(image, to: "local", tag: "1.0")
            try await withPuller(registry, retry: RetryPolicy(attempts: 1, initialDelay: .milliseconds(10))) { puller, _ in
                let pinned = try ImageReference(parsing: "\(registry.host)/local@\(digest)")
                let pulled = try await puller.pull(pinned)
                registry.kill()
                let again = try await puller.pull(pinned)
                #expect(again == pulled)
                await #expect(throws: ImagePullError.self) {
                    try await puller.pull(try ImageReference(parsing: "\(registry.host)/local:1.0"))
                }
            }
        }
    }

    /// A registry (or a cache in front of it) that serves other bytes under a manifest's digest
    /// is refused, by tag and by pinned digest alike: the bytes are hashed, not the
    /// `Docker-Content-Digest` header believed. The stand-in bytes are still a valid manifest
    /// (one digit of the layer's digest changed), so the registry serves them as it would.
    @Test func a_manifest_whose_bytes_are_not_its_digest_is_refused() async throws {
        try await withRegistry { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()])
            let digest = try await registry.push(image, to: "tampered", tag: "1")
            let layerHex = Array(image.layerDigests[0].hex.utf8)
            var bytes = image.manifest
            let at = try #require(bytes.indices.first { bytes[$0...].starts(with: layerHex) }) + layerHex.count - 1
            bytes[at] = bytes[at] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
            try Data(bytes).write(to: URL(fileURLWithPath: registry.blobDataPath(digest)))
            try await withPuller(registry) { puller, root in
                for reference in ["\(registry.host)/tampered:1", "\(registry.host)/tampered@\(digest)"] {
                    await #expect {
                        try await puller.pull(try ImageReference(parsing: reference))
                    } throws: { error in
                        "\(error)".hasSuffix("manifest \(digest): digest mismatch: expected \(digest), got \(Digest.of(bytes))")
                    }
                }
                let images = try puller.images()
                #expect(images.isEmpty)
                let stored = (try? FileManager.default.contentsOfDirectory(atPath: root + "/blobs/sha256")) ?? []
                #expect(!stored.contains { $0.contains(digest.hex) })
            }
        }
    }

    @Test func whiteout_over_a_lower_layer_becomes_an_overlay_whiteout() async throws {
        try await withRegistry { registry in
            let lower = try TestImage.layer { root in
                try "keep\n".write(toFile: root + "/kept", atomically: false, encoding: .utf8)
                try "gone\n".write(toFile: root + "/gone", atomically: false, encoding: .utf8)
            }
            let upper = try TestImage.layer { root in
                _ = FileManager.default.createFile(atPath: root + "/.wh.gone", contents: nil)
            }
            let image = try TestImage(layers: [lower, upper])
            try await registry.push(image, to: "whiteout", tag: "1")
            try await withPuller(registry) { puller, root in
                let pulled = try await puller.pull(try ImageReference(parsing: "\(registry.host)/whiteout:1"))
                #expect(pulled.layers == image.layerDigests)
                var info = stat()
                let upperPath = root + "/layers/sha256/\(image.layerDigests[1].hex)"
                #expect(lstat(upperPath + "/gone", &info) == 0)
                #expect(info.st_mode & S_IFMT == S_IFCHR && info.st_rdev == 0)
                #expect(!FileManager.default.fileExists(atPath: upperPath + "/.wh.gone"))
                #expect(FileManager.default.fileExists(atPath: root + "/layers/sha256/\(image.layerDigests[0].hex)/gone"))
            }
        }
    }

    @Test func a_corrupted_blob_is_refused_and_nothing_is_kept() async throws {
        try await withRegistry { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()])
            try await registry.push(image, to: "corrupt", tag: "1")
            let layer = image.layerDigests[0]
            // Same size, one byte flipped: the registry serves it as the blob.
            var bytes = image.layers[0]
            bytes[bytes.count / 2] ^= 0xff
            let path = registry.blobDataPath(layer)
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            try await withPuller(registry) { puller, root in
                await #expect {
                    try await puller.pull(try ImageReference(parsing: "\(registry.host)/corrupt:1"))
                } throws: { error in
                    "\(error)".contains("layer \(layer): digest mismatch: expected \(layer), got \(Digest.of(bytes))")
                }
                let stored = try FileManager.default.contentsOfDirectory(atPath: root + "/blobs/sha256")
                #expect(!stored.contains { $0.contains(layer.hex) })
                #expect(!FileManager.default.fileExists(atPath: root + "/layers/sha256/\(layer.hex)"))
                #expect(try puller.images() == [])
            }
        }
    }

    @Test func a_registry_that_is_down_is_unreachable_after_the_retries() async throws {
        let port = try freeLoopbackPort()
        let root = "/tmp/flotilla-pull-test-" + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        defer { try? FileManager.default.removeItem(atPath: root) }
        let puller = try ImagePuller(
            root: root, access: RegistryAccess(), retry: RetryPolicy(attempts: 3, initialDelay: .milliseconds(100)))
        let reference = try ImageReference(parsing: "127.0.0.1:\(port)/web:1.4")
        let started = ContinuousClock.now
        await #expect {
            try await puller.pull(reference)
        } throws: { error in
            "\(error)" == "pull 127.0.0.1:\(port)/web:1.4: registry 127.0.0.1:\(port) unreachable: connection refused (after 3 attempts)"
        }
        // 100 + 200 ms of backoff between the three attempts.
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        await #expect(throws: ImagePullError.self) { try await puller.resolve(reference) }
        try await puller.shutdown()
    }

    @Test func a_registry_that_dies_mid_pull_and_comes_back_is_resumed() async throws {
        try await withRegistry { registry in
            // 24 MiB that gzip cannot shrink: the kill lands mid-body.
            let layer = try TestImage.layer { root in
                let random = (0..<(24 << 20) / 8).map { _ in UInt64.random(in: 0...UInt64.max) }
                try random.withUnsafeBytes { try Data($0).write(to: URL(fileURLWithPath: root + "/random")) }
            }
            let image = try TestImage(layers: [layer])
            try await registry.push(image, to: "flaky", tag: "1")
            let digest = image.layerDigests[0]
            struct Seen { var killedAt: Int64?; var afterKill: [Int64] = [] }
            let seen = Locked(Seen())
            try await withPuller(registry, retry: RetryPolicy(attempts: 6, initialDelay: .milliseconds(200))) { puller, _ in
                let restarted = Task {
                    while seen.withLock({ $0.killedAt == nil }) { try await Task.sleep(for: .milliseconds(20)) }
                    try await Task.sleep(for: .milliseconds(300))
                    try await registry.start()
                }
                let pulled = try await puller.pull(try ImageReference(parsing: "\(registry.host)/flaky:1")) { report in
                    guard report.digest == digest, report.phase == .downloading else { return }
                    seen.withLock { seen in
                        if seen.killedAt == nil, report.bytesDone > 4 << 20 {
                            registry.kill()
                            seen.killedAt = report.bytesDone
                        } else if seen.killedAt != nil {
                            seen.afterKill.append(report.bytesDone)
                        }
                    }
                }
                try await restarted.value
                #expect(pulled.layers == [digest])
                let seenNow = seen.withLock { $0 }
                let killedAt = try #require(seenNow.killedAt)
                // Resumed with Range: no report after the kill starts again from zero.
                #expect(seenNow.afterKill.min() ?? 0 >= killedAt)
                #expect(seenNow.afterKill.max() == Int64(layer.count))
                // The restarted registry served the rest of the blob: 206 Partial Content. (The
                // killed registry never logged its request, which it did not finish.)
                let requests = registry.requests("GET", "/v2/flaky/blobs/\(digest)")
                #expect(requests.count == 1 && requests.allSatisfy { $0.contains(" HTTP/1.1\" 206 ") }, "\(requests)")
            }
        }
    }

    /// A record's temporary left by a crash (its write died before the rename) is removed when
    /// the next puller opens the store, once it is older than any write in flight can be; a
    /// young one, and the records, stay.
    @Test func a_record_temporary_left_by_a_crash_is_removed_when_the_store_opens() async throws {
        let root = NSTemporaryDirectory() + "flotilla-pull-leftovers-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.createDirectory(atPath: root + "/pulled", withIntermediateDirectories: true)
        let old = root + "/pulled/.abc.json.tmp-4242-1", young = root + "/pulled/.def.json.tmp-4243-2", record = root + "/pulled/abc.json"
        for path in [old, young, record] { #expect(FileManager.default.createFile(atPath: path, contents: Data("{".utf8))) }
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: old)
        try FileManager.default.setAttributes([.modificationDate: Date(timeIntervalSinceNow: -3600)], ofItemAtPath: record)
        let puller = try ImagePuller(root: root, access: RegistryAccess())
        try await puller.shutdown()
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: root + "/pulled")) == [".def.json.tmp-4243-2", "abc.json"])
    }

    @Test func concurrent_pulls_fetch_each_blob_once() async throws {
        try await withRegistry { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer(), try TestImage.layer { root in
                try "a\n".write(toFile: root + "/a", atomically: false, encoding: .utf8)
            }])
            try await registry.push(image, to: "shared", tag: "1")
            try await withPuller(registry) { puller, _ in
                let reference = try ImageReference(parsing: "\(registry.host)/shared:1")
                async let first = puller.pull(reference)
                async let second = puller.pull(reference)
                let (a, b) = try await (first, second)
                #expect(a == b)
                for digest in image.layerDigests + [image.configDigest] {
                    #expect(registry.requestCount("GET", "/v2/shared/blobs/\(digest)") == 1, "blob \(digest)")
                }
            }
        }
    }

    /// Two repositories holding one layer, pulled at once: the first's request for it is
    /// refused (404, after a second), while the second pull waits for that download to share
    /// it. The refusal is the first repository's: the second pull then fetches the layer from
    /// its own repository, where it was given the first pull's error before.
    @Test func a_pull_that_shared_a_failed_download_fetches_the_blob_itself() async throws {
        try await withRegistry { registry in
            let front = try await RegistryFront(registry)
            do {
                let image = try TestImage(layers: [try TestImage.busyboxLayer()])
                try await registry.push(image, to: "refused", tag: "1")
                try await registry.push(image, to: "served", tag: "1")
                let layer = "/blobs/\(image.layerDigests[0])"
                front.refuseNext(pathContaining: "/v2/refused" + layer, status: 404, delay: .seconds(1))
                try await withPuller(registry) { puller, _ in
                    let refused = Task { try await puller.pull(ImageReference(parsing: "\(front.host)/refused:1")) }
                    let deadline = ContinuousClock.now + .seconds(20)
                    while front.requestTimes(pathContaining: "/v2/refused" + layer).isEmpty && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    let served = try await puller.pull(ImageReference(parsing: "\(front.host)/served:1"))
                    #expect(served.layers == image.layerDigests)
                    await #expect(throws: (any Error).self) { try await refused.value }
                }
                // The second pull had its manifest before the refusal came, and asked for the
                // layer only after it: it had joined the first's download.
                let refusedAt = front.requestTimes(pathContaining: "/v2/refused" + layer)
                let servedAt = front.requestTimes(pathContaining: "/v2/served" + layer)
                let servedManifestAt = front.requestTimes(pathContaining: "/v2/served/manifests/")
                #expect(refusedAt.count == 1 && servedAt.count == 1 && servedAt[0] - refusedAt[0] >= .seconds(1),
                        "refused at \(refusedAt), served at \(servedAt)")
                #expect(servedManifestAt.last.map { $0 - (refusedAt.first ?? $0) < .milliseconds(900) } == true,
                        "the second pull's manifest at \(servedManifestAt), the refused request at \(refusedAt)")
            } catch {
                await front.stop()
                throw error
            }
            await front.stop()
        }
    }

    /// A pull cancelled while it waits for a download another pull started stops waiting at
    /// once (it waited for the download's end, and then carried on as if not cancelled); the
    /// download goes on and the other pull gets its image.
    @Test func a_pull_cancelled_while_it_shares_a_download_ends_at_once() async throws {
        try await withRegistry { registry in
            let front = try await RegistryFront(registry)
            do {
                let image = try TestImage(layers: [try TestImage.busyboxLayer()])
                try await registry.push(image, to: "slow", tag: "1")
                let layer = "/v2/slow/blobs/\(image.layerDigests[0])"
                // The first request for the layer is answered 503 after 6 s; the retry is served.
                front.refuseNext(pathContaining: layer, status: 503, retryAfter: "0", delay: .seconds(6))
                let reference = try ImageReference(parsing: "\(front.host)/slow:1")
                try await withPuller(registry) { puller, _ in
                    let first = Task { try await puller.pull(reference) }
                    let deadline = ContinuousClock.now + .seconds(20)
                    while front.requestTimes(pathContaining: layer).isEmpty && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    let second = Task { try await puller.pull(reference) }
                    // Once it has its manifest (asked by tag twice in all), its config is in the
                    // store already: it waits on the first's download a moment later.
                    while front.requestTimes(pathContaining: "/v2/slow/manifests/1").count < 2 && ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                    try await Task.sleep(for: .milliseconds(500))
                    let cancelled = ContinuousClock.now
                    second.cancel()
                    let outcome = await second.result
                    let waited = ContinuousClock.now - cancelled
                    #expect(waited < .seconds(2), "the cancelled pull ended \(waited) after its cancellation")
                    #expect(throws: CancellationError.self) { try outcome.get() }
                    #expect(try await first.value.layers == image.layerDigests)
                }
                #expect(front.requestTimes(pathContaining: layer).count == 2, "\(front.requestTimes(pathContaining: layer))")
            } catch {
                await front.stop()
                throw error
            }
            await front.stop()
        }
    }

    @Test func htpasswd_registry_with_and_without_credentials() async throws {
        try await withRegistry(htpasswd: true) { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()])
            try await registry.push(image, to: "private", tag: "1")
            let reference = try ImageReference(parsing: "\(registry.host)/private:1")
            try await withPuller(registry) { puller, _ in
                await #expect {
                    try await puller.pull(reference)
                } throws: { error in
                    "\(error)" == "pull \(reference): unauthorized: registry \(registry.host): it requires credentials and no credentials file is configured"
                }
            }
            let good = registry.directory + "/good.json"
            let auth = Data("tester:s3cret".utf8).base64EncodedString()
            try #"{"auths": {"\#(registry.host)": {"auth": "\#(auth)"}}}"#.write(toFile: good, atomically: true, encoding: .utf8)
            try await withPuller(registry, credentialsFile: good) { puller, _ in
                let pulled = try await puller.pull(reference)
                #expect(pulled.layers == image.layerDigests)
            }
            let bad = registry.directory + "/bad.json"
            try #"{"auths": {"\#(registry.host)": {"username": "tester", "password": "wrong"}}}"#
                .write(toFile: bad, atomically: true, encoding: .utf8)
            try await withPuller(registry, credentialsFile: bad) { puller, _ in
                await #expect {
                    try await puller.resolve(reference)
                } throws: { error in
                    "\(error)".contains("unauthorized: registry \(registry.host): the credentials for it in \(bad) were refused")
                }
            }
        }
    }

    @Test func basic_credentials_are_read_once_and_read_again_when_refused() async throws {
        try await withRegistry(htpasswd: true) { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()])
            try await registry.push(image, to: "private", tag: "1")
            let reference = try ImageReference(parsing: "\(registry.host)/private:1")
            let file = registry.directory + "/rotating.json"
            func write(password: String) throws {
                try #"{"auths": {"\#(registry.host)": {"username": "tester", "password": "\#(password)"}}}"#
                    .write(toFile: file, atomically: true, encoding: .utf8)
            }
            try write(password: "old")
            try await withPuller(registry, credentialsFile: file) { puller, _ in
                await #expect {
                    try await puller.resolve(reference)
                } throws: { error in
                    "\(error)".contains("the credentials for it in \(file) were refused")
                }
                // The operator puts the right password in the file: the refused header sends the
                // same puller back to the file, without a restart.
                try write(password: "s3cret")
                let pulled = try await puller.pull(reference)
                #expect(pulled.layers == image.layerDigests)
                let digest = try await puller.resolve(reference)
                // Accepted credentials are kept: the file is not read for every blob, so its
                // removal changes nothing until the registry refuses them.
                try FileManager.default.removeItem(atPath: file)
                let again = try await puller.resolve(reference)
                #expect(again == digest)
            }
        }
    }

    @Test func a_registry_with_token_authentication_is_pulled_with_a_bearer_token_fetched_once_per_scope() async throws {
        try await withRegistry(tokenAuth: true) { registry in
            let tokens = try #require(registry.tokenServer)
            let image = try TestImage(layers: [try TestImage.busyboxLayer(), try TestImage.layer { root in
                try "two\n".write(toFile: root + "/two", atomically: false, encoding: .utf8)
            }])
            try await registry.push(image, to: "team/private", tag: "1")
            let reference = try ImageReference(parsing: "\(registry.host)/team/private:1")
            // Without credentials the token endpoint refuses, and the error says where and why.
            try await withPuller(registry) { puller, _ in
                await #expect {
                    try await puller.resolve(reference)
                } throws: { error in
                    "\(error)".contains("the token endpoint \(tokens.realm) requires credentials and there are none for this registry")
                }
            }
            let credentials = registry.directory + "/auth.json"
            let auth = Data("tester:s3cret".utf8).base64EncodedString()
            try #"{"auths": {"\#(registry.host)": {"auth": "\#(auth)"}}}"#.write(toFile: credentials, atomically: true, encoding: .utf8)
            try await withPuller(registry, credentialsFile: credentials) { puller, root in
                let before = tokens.issuedScopes.count
                let pulled = try await puller.pull(reference)
                #expect(pulled.layers == image.layerDigests)
                #expect(FileManager.default.fileExists(atPath: root + "/layers/sha256/\(image.layerDigests[1].hex)/two"))
                // A manifest and three blobs, all under one scope: one token, cached for the rest.
                let asked = Array(tokens.issuedScopes.dropFirst(before))
                #expect(asked == ["repository:team/private:pull"], "\(asked)")
            }
        }
    }

    @Test func a_rate_limited_token_endpoint_is_asked_again_when_its_retry_after_says_in_either_form() async throws {
        try await withRegistry(tokenAuth: true) { registry in
            let tokens = try #require(registry.tokenServer)
            let image = try TestImage(layers: [try TestImage.busyboxLayer()])
            let digest = try await registry.push(image, to: "team/limited", tag: "1")
            let reference = try ImageReference(parsing: "\(registry.host)/team/limited:1")
            let credentials = registry.directory + "/auth.json"
            let auth = Data("tester:s3cret".utf8).base64EncodedString()
            try #"{"auths": {"\#(registry.host)": {"auth": "\#(auth)"}}}"#.write(toFile: credentials, atomically: true, encoding: .utf8)
            // Seconds (2 s after the answer), and a date 3 s ahead (no earlier than the instant it
            // names, which a busy machine may leave under 1.5 s after the first request); the
            // policy's own first wait is 100 ms.
            let forms: [() -> (value: String, notBefore: ContinuousClock.Instant?)] = [
                { ("2", nil) }, { let date = Self.httpDate(secondsAhead: 3); return (date.text, date.instant) },
            ]
            for form in forms {
                try await withPuller(registry, credentialsFile: credentials) { puller, _ in
                    let (value, notBefore) = form()
                    tokens.refuseNext(status: 429, retryAfter: value)
                    let before = tokens.tokenRequestTimes.count
                    #expect(try await puller.resolve(reference) == digest)
                    let times = Array(tokens.tokenRequestTimes.dropFirst(before))
                    try #require(times.count == 2, "Retry-After: \(value): \(times.count) token requests")
                    let waited = times[1] - times[0]
                    let waitedEnough = notBefore.map { times[1] >= $0 - .milliseconds(50) } ?? (waited >= .milliseconds(1500))
                    #expect(waitedEnough && waited < .seconds(8), "Retry-After: \(value): asked again after \(waited)")
                }
            }
        }
    }

    @Test func a_registry_that_sheds_load_is_asked_again_when_its_retry_after_says() async throws {
        try await withRegistry { registry in
            let front = try await RegistryFront(registry)
            do {
                let image = try TestImage(layers: [try TestImage.busyboxLayer()])
                let digest = try await registry.push(image, to: "shed/load", tag: "1")
                let reference = try ImageReference(parsing: "\(front.host)/shed/load:1")
                // The manifest: 503 until a date 3 s ahead (whole seconds: 2 to 3 s from now); the
                // layer: 429 for 2 s; the config: a 500 with no Retry-After, retried after the
                // policy's own 100 ms.
                let layer = "/blobs/\(image.layerDigests[0])"
                let config = "/blobs/\(image.configDigest)"
                let date = Self.httpDate(secondsAhead: 3)
                front.refuseNext(pathContaining: "/manifests/", status: 503, retryAfter: date.text)
                front.refuseNext(pathContaining: layer, status: 429, retryAfter: "2")
                front.refuseNext(pathContaining: config, status: 500)
                try await withPuller(registry) { puller, _ in
                    let pulled = try await puller.pull(reference)
                    #expect(pulled.manifestDigest == digest)
                    #expect(pulled.layers == image.layerDigests)
                }
                // The date: asked again no earlier than the instant it names, however late the
                // first request went out on a busy machine.
                let manifestTimes = front.requestTimes(pathContaining: "/manifests/")
                try #require(manifestTimes.count >= 2, "/manifests/: \(manifestTimes.count) requests")
                #expect(manifestTimes[1] >= date.instant - .milliseconds(50) && manifestTimes[1] - manifestTimes[0] < .seconds(8),
                        "/manifests/: asked again after \(manifestTimes[1] - manifestTimes[0]), the date \(date.text)")
                for (path, least, most) in [(layer, 1.5, 8.0), (config, 0.05, 1.4)] {
                    let times = front.requestTimes(pathContaining: path)
                    try #require(times.count >= 2, "\(path): \(times.count) requests")
                    let waited = times[1] - times[0]
                    #expect(waited >= .seconds(least) && waited < .seconds(most), "\(path): asked again after \(waited)")
                }
            } catch {
                await front.stop()
                throw error
            }
            await front.stop()
        }
    }

    @Test func a_resumed_download_answered_from_another_offset_starts_over() async throws {
        try await withRegistry { registry in
            let front = try await RegistryFront(registry)
            do {
                let image = try TestImage(layers: [try TestImage.busyboxLayer()])
                let digest = try await registry.push(image, to: "range/wrong", tag: "1")
                let reference = try ImageReference(parsing: "\(front.host)/range/wrong:1")
                // The layer breaks off after 100 KiB; the Range asked for the rest is answered
                // from byte 0 (with a Content-Range that says so), as a cache gone wrong would.
                let layer = "/blobs/\(image.layerDigests[0])"
                front.cutNext(pathContaining: layer, after: 100 << 10)
                front.misplaceNextRange(pathContaining: layer)
                try await withPuller(registry) { puller, _ in
                    let pulled = try await puller.pull(reference)
                    #expect(pulled.manifestDigest == digest)
                }
                // One Range, from what arrived before the break: up to the 100 KiB sent (a busy
                // machine's client may have read less of it before the connection went).
                let offsets = front.rangesAsked.compactMap { Int($0.dropFirst("bytes=".count).dropLast()) }
                #expect(offsets.count == 1 && front.rangesAsked.count == 1 && offsets.allSatisfy { (1...(100 << 10)).contains($0) },
                        "\(front.rangesAsked)")
                #expect(front.requestTimes(pathContaining: layer).count == 3, "cut, misplaced range, whole again")
            } catch {
                await front.stop()
                throw error
            }
            await front.stop()
        }
    }

    @Test func a_plain_http_registry_is_pulled_on_this_machine_or_when_listed_and_refused_otherwise() async throws {
        try await withRegistry(plainHTTP: true) { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()])
            let digest = try await registry.push(image, to: "dev/web", tag: "1")
            let reference = try ImageReference(parsing: "\(registry.host)/dev/web:1")
            // On 127.0.0.1: TLS is tried, the registry answers in plain HTTP, and the pull goes on over HTTP.
            try await withPuller(registry) { puller, _ in
                let pulled = try await puller.pull(reference)
                #expect(pulled.manifestDigest == digest && pulled.layers == image.layerDigests)
                // The registry gains a certificate on the same port: the same puller, which
                // remembered it as plain HTTP, asks over TLS again when HTTP fails there.
                try await registry.serve(plainHTTP: false)
                #expect(try await puller.resolve(reference) == digest)
                try await registry.serve(plainHTTP: true)
                #expect(try await puller.resolve(reference) == digest)
            }
            // Not allowed (loopback not trusted, not listed): refused, saying what to do.
            try await withPuller(registry, plainHTTPOnLoopback: false) { puller, _ in
                await #expect {
                    try await puller.resolve(reference)
                } throws: { error in
                    "\(error)".contains("answers in plain HTTP, not TLS") && "\(error)".contains("--registry-plain-http \(registry.host)")
                }
            }
            // Listed.
            try await withPuller(registry, plainHTTPOnLoopback: false, plainHTTPRegistries: [registry.host]) { puller, _ in
                let resolved = try await puller.resolve(reference)
                #expect(resolved == digest)
            }
        }
    }

    @Test func a_registry_remembered_as_plain_http_is_asked_over_tls_again_when_http_fails_there() async throws {
        try await withRegistry(plainHTTP: true) { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()])
            let digest = try await registry.push(image, to: "dev/web", tag: "1")
            let reference = try ImageReference(parsing: "\(registry.host)/dev/web:1")
            try await withPuller(registry) { puller, _ in
                #expect(try await puller.resolve(reference) == digest)  // Remembered as plain HTTP.
                // Its port answers TLS now, from a server that closes a connection speaking plain
                // HTTP (docker-registry would answer it 400, which a test above covers): only the
                // failed HTTP request itself can send the puller back to TLS.
                registry.kill()
                let front = try await RegistryFront(registry, port: registry.port)
                front.refuseNext(pathContaining: "/manifests/", status: 404)
                await #expect(throws: ImagePullError.self) { try await puller.resolve(reference) }
                #expect(front.requestTimes(pathContaining: "/manifests/").count == 1)
                await front.stop()
            }
        }
    }

    @Test(arguments: [TestImage.LayerCompression.zstd, .none])
    func layers_compressed_with_zstd_or_not_at_all_are_unpacked(_ compression: TestImage.LayerCompression) async throws {
        try await withRegistry { registry in
            let layer = try TestImage.layer(compression: compression) { root in
                try "plain\n".write(toFile: root + "/file", atomically: false, encoding: .utf8)
            }
            let image = try TestImage(layers: [layer], layerMediaType: compression.mediaType)
            try await registry.push(image, to: "formats", tag: "1")
            try await withPuller(registry) { puller, root in
                let pulled = try await puller.pull(try ImageReference(parsing: "\(registry.host)/formats:1"))
                let file = root + "/layers/sha256/\(pulled.layers[0].hex)/file"
                #expect((try? String(contentsOfFile: file, encoding: .utf8)) == "plain\n")
            }
        }
    }

    @Test func an_index_gives_this_platform_or_says_what_it_has() async throws {
        try await withRegistry { registry in
            let amd64 = try TestImage(layers: [try TestImage.busyboxLayer()], architecture: "amd64")
            let arm64 = try TestImage(layers: [try TestImage.layer { root in
                try "arm\n".write(toFile: root + "/arch", atomically: false, encoding: .utf8)
            }], architecture: "arm64")
            try await registry.push(amd64, to: "multi", tag: nil)
            try await registry.push(arm64, to: "multi", tag: nil)
            let index = try TestImage.index([(arm64, "arm64"), (amd64, "amd64")])
            let indexDigest = try await registry.pushManifest("multi", "1", index, mediaType: "application/vnd.oci.image.index.v1+json")
            let reference = try ImageReference(parsing: "\(registry.host)/multi:1")
            try await withPuller(registry, architecture: "amd64") { puller, _ in
                #expect(try await puller.resolve(reference) == indexDigest)
                let pulled = try await puller.pull(reference)
                #expect(pulled.reference == reference.pinned(to: indexDigest))
                #expect(pulled.manifestDigest == amd64.manifestDigest)
                #expect(pulled.layers == amd64.layerDigests)
            }
            try await withPuller(registry, architecture: "riscv64") { puller, _ in
                await #expect {
                    try await puller.pull(reference)
                } throws: { error in
                    "\(error)" == "pull \(reference.pinned(to: indexDigest)): no manifest for linux/riscv64 in the index (has: linux/arm64, linux/amd64)"
                }
            }
            // A single manifest for another architecture is refused too, by its config.
            try await withPuller(registry, architecture: "amd64") { puller, _ in
                await #expect {
                    try await puller.pull(try ImageReference(parsing: "\(registry.host)/multi@\(arm64.manifestDigest)"))
                } throws: { error in
                    "\(error)".hasSuffix(": the image is for linux/arm64, not for this node's linux/amd64")
                }
            }
        }
    }

    @Test func a_layer_type_we_do_not_unpack_is_refused() async throws {
        try await withRegistry { registry in
            let image = try TestImage(layers: [try TestImage.busyboxLayer()], layerMediaType: "application/vnd.example.unknown")
            try await registry.push(image, to: "odd", tag: "1")
            try await withPuller(registry) { puller, root in
                await #expect {
                    try await puller.pull(try ImageReference(parsing: "\(registry.host)/odd:1"))
                } throws: { error in
                    "\(error)".contains("media type \"application/vnd.example.unknown\": not a layer type we unpack")
                }
                #expect(!FileManager.default.fileExists(atPath: root + "/blobs/sha256/\(image.layerDigests[0].hex)"))
            }
        }
    }
}

/// A value behind a mutex, shareable with progress callbacks and tasks.
final class Locked<Value: Sendable>: Sendable {
    private let mutex: Mutex<Value>
    init(_ value: Value) { mutex = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { mutex.withLock { body(&$0) } }
}
