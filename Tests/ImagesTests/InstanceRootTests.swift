import Foundation
import Glibc
import Testing
import TestSupport

@testable import Images

@Suite("InstanceRoot", .dedicatedThread, .timeLimit(.minutes(10)))
struct InstanceRootTests {
    @Test("overlay options list the lower directories top-most first")
    func options() throws {
        let root = try InstanceRoot(layers: ["/l/base", "/l/middle", "/l/top"], directory: "/i/web-1")
        #expect(root.options == "lowerdir=/l/top:/l/middle:/l/base,upperdir=/i/web-1/upper,workdir=/i/web-1/work")
        #expect(root.readOnlyOptions == "lowerdir=/l/top:/l/middle:/l/base")
    }

    @Test("a layer listed twice is kept at its top-most place only (overlayfs refuses a lower directory twice)")
    func repeatedLayer() throws {
        let root = try InstanceRoot(layers: ["/l/empty", "/l/base", "/l/empty", "/l/top"], directory: "/i/web-1")
        #expect(root.readOnlyOptions == "lowerdir=/l/top:/l/empty:/l/base")
    }

    @Test("paths overlayfs would split on are refused, naming the path")
    func refusesSeparators() {
        #expect(throws: ImageError.overlay(reason: "path \"/l/a:b\" must be absolute and free of ':', ',' and '\\'")) {
            try InstanceRoot(layers: ["/l/a:b"], directory: "/i/web-1")
        }
    }

    @Test(
        "two layers mounted as overlay: whiteout and opaque directory hide the lower layer's files; busybox runs",
        .enabled(if: isRoot, needsRoot))
    func mountsOverlay() async throws {
        try await withTestDirectory { directory in
            let image = try await TwoLayerImage(in: directory, base: .gzip, top: .zstd)
            let (layers, base, top) = (image.layers, image.base, image.top)
            let instance = try InstanceRoot(layers: image.paths, directory: directory.path + "/instances/web-1")
            // Unmounted however the checks end, before the test directory is removed.
            defer { try? instance.unmountAndRemove() }
            try instance.mount()
            let merged = instance.rootfs

            #expect(fileStatus(merged + "/etc/hidden") == nil, "the whiteout hides the lower file")
            #expect(try String(contentsOfFile: merged + "/etc/kept", encoding: .utf8) == "kept\n")
            #expect(try FileSystem.names(in: merged + "/opt") == ["new"], "the opaque directory hides opt/old")
            try run("/usr/sbin/chroot", [merged, "/bin/busybox", "true"])

            // Writes land in the instance's upper directory, never in a layer.
            try "written\n".write(toFile: merged + "/etc/kept", atomically: false, encoding: .utf8)
            #expect(try String(contentsOfFile: layers.path(of: base) + "/etc/kept", encoding: .utf8) == "kept\n")
            #expect(fileStatus(instance.upper + "/etc/kept") != nil)

            try instance.unmountAndRemove()
            #expect(try FileSystem.names(in: instance.directory).isEmpty)
            #expect(layers.contains(base) && layers.contains(top))
        }
    }

    @Test(
        "unmounting succeeds while a descriptor into the overlay is still open (a forked child's)",
        .enabled(if: isRoot, needsRoot))
    func unmountsWhileBusy() async throws {
        try await withTestDirectory { directory in
            let image = try await TwoLayerImage(in: directory, base: .none, top: .none)
            let instance = try InstanceRoot(layers: image.paths, directory: directory.path + "/instances/busy")
            defer { try? instance.unmountAndRemove() }
            try instance.mount()
            let fd = open(instance.rootfs + "/etc/kept", O_RDONLY | O_CLOEXEC)
            #expect(fd >= 0)
            defer { close(fd) }
            try instance.unmountAndRemove()
            let mounts = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            #expect(!mounts.contains(instance.rootfs))
            #expect(fileStatus(instance.upper) == nil && fileStatus(instance.rootfs) == nil)
        }
    }

    @Test("removing a tree stops at a mount point: an overlay still mounted is never emptied", .enabled(if: isRoot, needsRoot))
    func removalStopsAtMount() async throws {
        try await withTestDirectory { directory in
            let image = try await TwoLayerImage(in: directory, base: .none, top: .none)
            let instance = try InstanceRoot(layers: image.paths, directory: directory.path + "/instances/mounted")
            defer { try? instance.unmountAndRemove() }
            try instance.mount()
            #expect(throws: ImageError.self) { try FileSystem.removeTree(instance.directory) }
            #expect(fileStatus(instance.rootfs + "/etc/kept") != nil)
            #expect(fileStatus(instance.upper + "/etc") == nil, "nothing was deleted through the overlay")
        }
    }

    @Test("a read-only overlay of two layers has no upper directory and refuses writes", .enabled(if: isRoot, needsRoot))
    func mountsReadOnly() async throws {
        try await withTestDirectory { directory in
            let image = try await TwoLayerImage(in: directory, base: .none, top: .none)
            let instance = try InstanceRoot(layers: image.paths, directory: directory.path + "/instances/ro")
            defer { try? instance.unmountAndRemove() }
            try instance.mount(readOnly: true)
            #expect(fileStatus(instance.rootfs + "/etc/hidden") == nil)
            #expect(fileStatus(instance.upper) == nil, "a read-only root has no upper directory")
            #expect(open(instance.rootfs + "/etc/new", O_WRONLY | O_CREAT, 0o644) == -1 && errno == EROFS)
        }
    }

    @Test(
        "an image of 80 layers mounts, over mount(2)'s 4,096 bytes of options; the top-most layer's file wins",
        .enabled(if: isRoot, needsRoot))
    func mountsManyLayers() async throws {
        try await withTestDirectory { directory in
            let layers = try Self.tallImage(in: directory)
            let instance = try InstanceRoot(layers: layers, directory: directory.path + "/instances/tall")
            #expect(instance.options.utf8.count > InstanceRoot.optionsLimitBytes)
            defer { try? instance.unmountAndRemove() }
            try instance.mount()
            #expect(try String(contentsOfFile: instance.rootfs + "/shared", encoding: .utf8) == "79\n")
            #expect((0..<80).allSatisfy { fileStatus(instance.rootfs + "/from-\($0)") != nil })
            try "written\n".write(toFile: instance.rootfs + "/shared", atomically: false, encoding: .utf8)
            #expect(try String(contentsOfFile: layers[79] + "/shared", encoding: .utf8) == "79\n")
            try instance.unmountAndRemove()

            let readOnly = try InstanceRoot(layers: layers, directory: directory.path + "/instances/tall-ro")
            defer { try? readOnly.unmountAndRemove() }
            try readOnly.mount(readOnly: true)
            #expect(open(readOnly.rootfs + "/new", O_WRONLY | O_CREAT, 0o644) == -1 && errno == EROFS)
        }
    }

    @Test(
        "a lower directory that is not there fails a tall image's mount naming the call, the root, the layer and the reason",
        .enabled(if: isRoot, needsRoot))
    func missingLayerIsNamed() async throws {
        try await withTestDirectory { directory in
            var layers = try Self.tallImage(in: directory)
            layers[40] = directory.path + "/layers/gone"
            let instance = try InstanceRoot(layers: layers, directory: directory.path + "/instances/gone")
            defer { try? instance.unmountAndRemove() }
            let error = #expect(throws: ImageError.self) { try instance.mount() }
            let text = error.map { "\($0)" } ?? ""
            #expect(
                text.contains("lowerdir+") && text.contains(instance.rootfs) && text.contains("layer \(layers[40])")
                    && text.contains("No such file or directory"), "\(text)")
        }
    }

    /// 80 layer directories with paths as long as the layer store's (a sha256 hex name each),
    /// about 8 KiB of options; each has a file of its own and `shared`, holding its index.
    private static func tallImage(in directory: TestDirectory) throws -> [String] {
        try (0..<80).map { index -> String in
            let path = directory.path + "/layers/" + String(repeating: String(format: "%02x", index), count: 32)
            try FileSystem.makeDirectories(path)
            try "\(index)\n".write(toFile: path + "/shared", atomically: false, encoding: .utf8)
            try "".write(toFile: path + "/from-\(index)", atomically: false, encoding: .utf8)
            return path
        }
    }
}
