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

    /// The kernel copies mount options into one page; longer ones fail with a bare EINVAL.
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
    public func mount(readOnly: Bool = false) throws(ImageError) {
        let options = readOnly ? readOnlyOptions : options
        if readOnly && layers.count < 2 {
            throw .overlay(reason: "a read-only overlay needs at least two layers (overlayfs refuses one lower directory without an upper)")
        }
        guard options.utf8.count < Self.optionsLimitBytes else {
            throw .overlay(reason: "mount options are \(options.utf8.count) bytes, over the kernel's \(Self.optionsLimitBytes)-byte page (\(layers.count) layers)")
        }
        try prepare(readOnly: readOnly)
        let flags = readOnly ? UInt(MS_RDONLY) : 0
        let status = options.withCString { Glibc.mount("overlay", rootfs, "overlay", flags, $0) }
        guard status == 0 else {
            throw .lastSystemError("mount overlay", rootfs)
        }
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
