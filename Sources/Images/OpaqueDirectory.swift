import CImages
import Glibc

/// Marks a directory of an unpacked layer opaque for overlayfs (`trusted.overlay.opaque=y`).
///
/// The directory is reached one component at a time with `openat(O_NOFOLLOW | O_DIRECTORY)`,
/// so a symlink the layer planted (`etc -> /etc`) is never followed to set an xattr on the host.
enum OpaqueDirectory {
    static func mark(_ directory: LayerEntryPath, beneath root: String) throws(ImageError) {
        var fd = open(root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .lastSystemError("open", root) }
        defer { close(fd) }
        var walked = root
        for component in directory.components {
            walked += "/" + component
            // A marker may come without its directory's own entry; overlayfs still needs it.
            if mkdirat(fd, String(component), 0o755) != 0 && errno != EEXIST {
                throw .lastSystemError("mkdirat", walked)
            }
            let next = openat(fd, String(component), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard next >= 0 else { throw .lastSystemError("openat", walked) }
            close(fd)
            fd = next
        }
        let value: [UInt8] = Array("y".utf8)
        guard fsetxattr(fd, Whiteout.opaqueAttribute, value, value.count, 0) == 0 else {
            throw .lastSystemError("fsetxattr \(Whiteout.opaqueAttribute)", walked)
        }
    }
}
