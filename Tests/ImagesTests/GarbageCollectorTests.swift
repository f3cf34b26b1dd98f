import Foundation
import Testing
import TestSupport

@testable import Images

@Suite("GarbageCollector", .dedicatedThread, .timeLimit(.minutes(10)), .enabled(if: isRoot, needsRoot))
struct GarbageCollectorTests {
    @Test("unused blobs and layers past the grace period go; in-use and recent ones stay")
    func collects() async throws {
        try await withTestDirectory { directory in
            let image = try await TwoLayerImage(in: directory, base: .gzip, top: .gzip)
            let (blobs, layers, used, unused) = (image.blobs, image.layers, image.base, image.top)
            // A crashed blob write's temp file.
            let stale = blobs.directory + "/.tmp-" + unused.hex + "-crashed"
            _ = FileManager.default.createFile(atPath: stale, contents: Data([1]))
            let collector = GarbageCollector(blobs: blobs, layers: layers)

            // Within the grace period nothing goes, used or not.
            let early = try collector.collect(inUse: [used], grace: .seconds(3600))
            #expect(early == GarbageCollector.Report())

            // An hour later, what is unused goes; what is in use stays.
            let report = try collector.collect(inUse: [used], grace: .seconds(3600), now: Date().addingTimeInterval(7200))
            #expect(report.removedLayers == [unused])
            #expect(report.removedBlobs == [unused])
            #expect(report.removedTemporaries.contains(stale))
            #expect(try layers.list() == [used])
            #expect(try blobs.list() == [used])
            #expect(layers.contains(used) && blobs.contains(used))
            #expect(fileStatus(layers.path(of: used) + "/bin/busybox") != nil)
            #expect(try FileSystem.names(in: layers.directory).allSatisfy { !$0.hasPrefix(".tmp-") })
        }
    }

    @Test("a layer that cannot be removed is reported and the rest of the collection goes on")
    func oneFailureDoesNotStopTheRest() async throws {
        try await withTestDirectory { directory in
            let image = try await TwoLayerImage(in: directory, base: .gzip, top: .gzip)
            let (blobs, layers) = (image.blobs, image.layers)
            // A mount left inside the base layer: its removal stops there (and must). The layer
            // is renamed aside before its removal, the mount with it: unmounted by descriptor.
            let mountPoint = layers.path(of: image.base) + "/etc"
            try #require(mount("tmpfs", mountPoint, "tmpfs", 0, "size=64k") == 0)
            let mounted = open(mountPoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            defer {
                umount2("/proc/self/fd/\(mounted)", Int32(MNT_DETACH))
                close(mounted)
            }
            let collector = GarbageCollector(blobs: blobs, layers: layers)
            let report = try collector.collect(inUse: [], grace: .seconds(3600), now: Date().addingTimeInterval(7200))
            #expect(report.removedLayers == [image.top])
            #expect(Set(report.removedBlobs) == [image.base, image.top])
            #expect(report.failures.first?.hasPrefix("layer \(image.base): remove (a mount point, left alone)") == true, "\(report.failures)")
            #expect(!layers.contains(image.top))
        }
    }
}
