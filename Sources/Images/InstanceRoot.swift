import CImages
import Glibc

/// An instance's root filesystem: its image's unpacked layers stacked by overlayfs, with a
/// private upper directory for what the instance writes, removed with the instance.
///
/// Layout under the instance directory: `upper/` (the instance's changes), `work/` (overlayfs's
/// scratch space; it must be on the same filesystem as `upper/`) and `rootfs/` (the mount point).
public struct InstanceRoot: Sendable {
    /// The unpacked layer directories, lowest (the base image) first, as images list them, with
    /// a repeated layer kept only at its top-most place (see `init`).
    public let layers: [String]
    /// The instance's own directory.
    public let directory: String

    public var upper: String { directory + "/upper" }
    public var work: String { directory + "/work" }
    /// Where `mount` mounts the overlay.
    public var rootfs: String { directory + "/rootfs" }

    /// mount(2) copies its options into one page; longer ones fail with a bare EINVAL (`mount`
    /// then takes the mount API).
    static let optionsLimitBytes = 4096

    /// Checks that overlayfs can take every path; nothing is created yet.
    ///
    /// An image may list one layer twice (the empty layer is a common repeat), and overlayfs
    /// refuses a lower directory given twice ("conflicting lowerdir path", ELOOP). Only the
    /// top-most occurrence is kept, which stacks to the same tree: every path the layer
    /// defines, hides or makes opaque is decided by that occurrence before a lower one is read.
    public init(layers: [String], directory: String) throws(ImageError) {
        guard !layers.isEmpty else { throw .overlay(reason: "an instance root needs at least one layer") }
        for path in layers + [directory] {
            // `:` separates lower directories and `,` separates options; overlayfs's escaping of
            // them is not worth the risk for paths the store makes itself (hex names).
            if path.contains(":") || path.contains(",") || path.contains("\\") || !path.hasPrefix("/") {
                throw .overlay(reason: "path \"\(path)\" must be absolute and free of ':', ',' and '\\'")
            }
        }
        var seen: Set<String> = []
        self.layers = layers.reversed().filter { seen.insert($0).inserted }.reversed()
        self.directory = directory
    }

    /// The writable overlay's options. overlayfs lists lower directories top-most first, the
    /// reverse of an image's layer order.
    public var options: String {
        "lowerdir=" + layers.reversed().joined(separator: ":") + ",upperdir=" + upper + ",workdir=" + work
    }

    /// A read-only overlay's options: lower directories only. The kernel needs at least two
    /// lower directories without an upper one.
    public var readOnlyOptions: String {
        "lowerdir=" + layers.reversed().joined(separator: ":")
    }

    /// The mount points every instance's launch mounts on (docs/supervision.md): made in the
    /// upper directory beforehand, on the host's filesystem, rather than by the launcher through
    /// overlayfs, whose mkdir costs a copy-up of the parent and a rename from its work directory
    /// at every start (image-bench, two runs each: a start from an image was 1.23 and 1.15× a
    /// start from a rootfs directory before, 1.13 and 1.11× after).
    static let mountPoints = ["proc", "dev", "sys"]

    /// Creates `upper/` (with the launch's mount points), `work/` and `rootfs/` (mode 0755: the
    /// overlay root takes upper's mode); a read-only root needs `rootfs/` alone.
    public func prepare(readOnly: Bool = false) throws(ImageError) {
        try FileSystem.makeDirectories(directory)
        let paths = readOnly ? [rootfs] : [upper, work, rootfs] + Self.mountPoints.map { upper + "/" + $0 }
        for path in paths {
            if mkdir(path, 0o755) != 0 && errno != EEXIST { throw .lastSystemError("mkdir", path) }
        }
    }

    /// Prepares the directories and mounts the overlay at `rootfs` (root only).
    ///
    /// mount(2) takes every option in one 4,096-byte page: about 38 layers' paths. Images of
    /// 40 to 127 layers are common enough (Docker's limit is 127, overlayfs's 500), so options
    /// that do not fit go through the mount API instead, each lower directory a `lowerdir+`
    /// parameter of its own, which overlayfs takes from Linux 6.8 on; an older kernel refuses
    /// such an image with a message that says so. Options that fit keep mount(2), which every
    /// kernel takes (before 6.5 overlayfs does not parse the mount API's parameters itself).
    public func mount(readOnly: Bool = false) throws(ImageError) {
        if readOnly && layers.count < 2 {
            throw .overlay(reason: "a read-only overlay needs at least two layers (overlayfs refuses one lower directory without an upper)")
        }
        try prepare(readOnly: readOnly)
        let options = readOnly ? readOnlyOptions : options
        guard options.utf8.count < Self.optionsLimitBytes else {
            try mountEachLayerAsAParameter(readOnly: readOnly, optionsBytes: options.utf8.count)
            return
        }
        let flags = readOnly ? UInt(MS_RDONLY) : 0
        let status = options.withCString { Glibc.mount("overlay", rootfs, "overlay", flags, $0) }
        guard status == 0 else {
            throw .lastSystemError("mount overlay", rootfs)
        }
    }

    private func mountEachLayerAsAParameter(readOnly: Bool, optionsBytes: Int) throws(ImageError) {
        // Top-most first, as overlayfs stacks them.
        let topFirst = Array(layers.reversed())
        let lowers = topFirst.map { strdup($0) }
        defer { for lower in lowers { free(lower) } }
        var failedCall: UnsafePointer<CChar>?
        var failedLower = 0
        var message = [CChar](repeating: 0, count: 512)
        let status = lowers.map { UnsafePointer($0) }.withUnsafeBufferPointer { lowerPointers in
            fl_images_mount_overlay(
                rootfs, lowerPointers.baseAddress, lowerPointers.count, readOnly ? nil : upper, readOnly ? nil : work,
                readOnly ? 1 : 0, &failedCall, &failedLower, &message, message.count)
        }
        guard status != 0 else { return }
        let errno = -status
        let call = failedCall.map { String(cString: $0) } ?? "mount overlay"
        var reason = "\(call) \(rootfs)"
        if failedLower < topFirst.count { reason += " (layer \(topFirst[failedLower]))" }
        reason += ": " + String(cString: strerror(errno))
        let kernelSays = String(decoding: message.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if !kernelSays.isEmpty { reason += " (\(kernelSays))" }
        // ENOSYS: no mount API (before 5.2, or a seccomp filter); EINVAL from a kernel whose
        // overlayfs does not know `lowerdir+` (before 6.8: at the parameter, or at the create
        // before 6.5, which passes parameters on unread).
        if errno == ENOSYS || errno == EPERM || (errno == EINVAL && (call == "fsconfig create overlay" || kernelSays.contains("lowerdir+"))) {
            reason += "; \(layers.count) layers need \(optionsBytes) bytes of mount options, over mount(2)'s \(Self.optionsLimitBytes)-byte page, "
                + "and more than that needs Linux 6.8 or later"
        }
        throw .overlay(reason: reason)
    }

    /// Unmounts the overlay if it is mounted, then removes `upper/`, `work/` and `rootfs/`:
    /// what the instance wrote goes with it. The layers are untouched.
    public func unmountAndRemove() throws(ImageError) {
        // EINVAL: nothing is mounted there (never mounted, or unmounted before a crash).
        // EBUSY with the instance's processes gone: something still holds a reference, such as
        // a child another thread forked at that moment, which inherited a descriptor into the
        // overlay (fork copies every descriptor not marked close-on-exec). Detaching drops the
        // mount from the tree now and frees it when the last reference goes; the instance's
        // files are going anyway.
        if umount2(rootfs, 0) != 0 {
            switch errno {
            case EINVAL, ENOENT:
                break
            case EBUSY:
                guard umount2(rootfs, Int32(MNT_DETACH)) == 0 else { throw .lastSystemError("umount (detach)", rootfs) }
            default:
                throw .lastSystemError("umount", rootfs)
            }
        }
        // rmdir, not a recursive removal: were anything still mounted there, a recursive
        // removal would walk into it; an empty mount point is all that may be left.
        guard rmdir(rootfs) == 0 || errno == ENOENT else { throw .lastSystemError("rmdir", rootfs) }
        try FileSystem.removeTree(upper)
        try FileSystem.removeTree(work)
    }
}
