import CArchive
import Glibc

/// Unpacks one layer tarball (plain, gzip or zstd: libarchive detects the filter from the data)
/// into an empty directory, refusing what a layer must not contain and turning OCI whiteouts
/// into overlayfs ones.
///
/// Refused, each with the entry's path: absolute paths and `..` components (also as hard-link
/// targets); character and block devices (a layer could otherwise hand a service the host's
/// disks); sockets; setuid files and setgid files (setgid directories are allowed: they only
/// make new files inherit the group, and base images have them, e.g. Debian's /var/mail);
/// the `security.capability` xattr (file capabilities grant privilege as setuid does) and
/// `trusted.overlay.*` xattrs (they would forge overlay metadata). FIFOs are allowed: they are
/// inert until a process in the instance opens them.
///
/// Kept: numeric owners (never looked up in the host's /etc/passwd), modes, mtimes, xattrs.
/// Symlinks are written as they are, pointing anywhere; libarchive's secure-symlink check stops
/// any later entry from being written through one.
struct LayerUnpacker {
    let layer: Digest
    /// The layer blob.
    let archivePath: String
    /// An empty directory with no symlink in its path (the store resolves it with realpath):
    /// entries are written at `destination/<path>` by absolute path, and libarchive's
    /// secure-symlink check must only ever meet symlinks that came from the layer.
    let destination: String

    /// libarchive's extraction flags. Absolute paths are given to libarchive on purpose (a
    /// process-wide chdir is no option in a multithreaded agent), so NOABSOLUTEPATHS is not set:
    /// `LayerEntryPath` refuses absolute entry paths before they are rewritten.
    /// Not UNLINK: with it, libarchive silently replaces a symlink met in the middle of a path
    /// (`etc -> /x`, then `etc/passwd`) with a directory instead of refusing the entry. Without
    /// it, an existing file is still unlinked before being replaced (never written through a
    /// hard link), and a symlink as the last component is replaced, not followed.
    static let extractFlags: Int32 =
        ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME | ARCHIVE_EXTRACT_XATTR
        | ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_SECURE_NODOTDOT

    func unpack() throws(ImageError) {
        guard let reader = archive_read_new() else { throw archiveError(nil, "archive_read_new failed") }
        defer { archive_read_free(reader) }
        // The compressions Docker reads layers in, each through a library linked into libarchive.
        // Not `_all`: for lrzip, grzip or lzop data libarchive forks and execs an outside
        // program (if installed), as root, from a multithreaded agent.
        // ARCHIVE_WARN: this libarchive lacks the library and would run the outside program.
        for (name, enable) in [("gzip", archive_read_support_filter_gzip), ("bzip2", archive_read_support_filter_bzip2),
                               ("xz", archive_read_support_filter_xz), ("zstd", archive_read_support_filter_zstd)]
            where enable(reader) != ARCHIVE_OK
        {
            throw archiveError(nil, "this libarchive reads \(name) only through an outside program, which is not run as root here: "
                + "install a libarchive built with \(name) support (Debian's is)")
        }
        archive_read_support_format_tar(reader)
        guard archive_read_open_filename(reader, archivePath, 64 * 1024) == ARCHIVE_OK else {
            throw archiveError(nil, message(reader))
        }
        guard let writer = archive_write_disk_new() else { throw archiveError(nil, "archive_write_disk_new failed") }
        defer { archive_write_free(writer) }
        archive_write_disk_set_options(writer, Self.extractFlags)

        var opaqueDirectories: [LayerEntryPath] = []
        while true {
            var entry: OpaquePointer?
            let status = archive_read_next_header(reader, &entry)
            if status == ARCHIVE_EOF { break }
            guard status >= ARCHIVE_WARN, let entry else { throw archiveError(nil, message(reader)) }
            guard let rawPathPointer = archive_entry_pathname(entry) else {
                throw archiveError(nil, "an entry's path cannot be read")
            }
            let rawPath = String(cString: rawPathPointer)
            let path = try entryPath(rawPath, as: rawPath)
            // The root (`./`) is the layer directory itself, which the store owns.
            if path.components.isEmpty { continue }

            switch try whiteout(path, rawPath: rawPath) {
            case .hide(let hidden)?:
                try writeWhiteout(at: hidden, like: entry, rawPath: rawPath, writer: writer)
            case .opaque(let directory)?:
                // Set after every entry is written: the directory may come later in the stream.
                opaqueDirectories.append(directory)
            case nil:
                try check(entry, rawPath: rawPath)
                try rewritePaths(entry, path: path, rawPath: rawPath)
                try write(entry, rawPath: rawPath, reader: reader, writer: writer)
            }
        }
        for directory in opaqueDirectories {
            try OpaqueDirectory.mark(directory, beneath: destination)
        }
        // Closing applies the directories' deferred modes and times, after every child exists.
        guard archive_write_close(writer) == ARCHIVE_OK else { throw archiveError(nil, message(writer)) }
    }

    private func entryPath(_ raw: String, as rawPath: String) throws(ImageError) -> LayerEntryPath {
        do throws(LayerEntryPath.Refusal) {
            return try LayerEntryPath(raw)
        } catch {
            throw .entryRefused(layer: layer, path: rawPath, reason: error.description)
        }
    }

    private func whiteout(_ path: LayerEntryPath, rawPath: String) throws(ImageError) -> Whiteout? {
        do throws(WhiteoutRefusal) {
            return try Whiteout.classify(path)
        } catch {
            throw .entryRefused(layer: layer, path: rawPath, reason: error.description)
        }
    }

    /// The refusals that depend on the entry's type, mode and xattrs.
    private func check(_ entry: OpaquePointer, rawPath: String) throws(ImageError) {
        let type = archive_entry_filetype(entry)
        switch type {
        case S_IFCHR, S_IFBLK:
            throw .entryRefused(layer: layer, path: rawPath, reason: "device node (layers may not create devices)")
        case S_IFSOCK:
            throw .entryRefused(layer: layer, path: rawPath, reason: "socket")
        default:
            break
        }
        let mode = archive_entry_mode(entry)
        if mode & S_ISUID != 0 {
            throw .entryRefused(layer: layer, path: rawPath, reason: "setuid bit")
        }
        if mode & S_ISGID != 0 && type != S_IFDIR {
            throw .entryRefused(layer: layer, path: rawPath, reason: "setgid bit")
        }
        archive_entry_xattr_reset(entry)
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while archive_entry_xattr_next(entry, &name, &value, &size) == ARCHIVE_OK {
            guard let name else { continue }
            let attribute = String(cString: name)
            if attribute == "security.capability" || attribute.hasPrefix("trusted.overlay.") {
                throw .entryRefused(layer: layer, path: rawPath, reason: "xattr \(attribute)")
            }
        }
    }

    /// Points the entry (and its hard-link target) at the destination, by absolute path.
    private func rewritePaths(_ entry: OpaquePointer, path: LayerEntryPath, rawPath: String) throws(ImageError) {
        if let rawTarget = archive_entry_hardlink(entry) {
            let target: LayerEntryPath
            do throws(LayerEntryPath.Refusal) {
                target = try LayerEntryPath(String(cString: rawTarget))
            } catch {
                throw .entryRefused(
                    layer: layer, path: rawPath,
                    reason: "hard link to \"\(String(cString: rawTarget))\": \(error.description)")
            }
            guard !target.components.isEmpty else {
                throw .entryRefused(layer: layer, path: rawPath, reason: "hard link to the layer's root")
            }
            archive_entry_set_hardlink(entry, destination + "/" + target.relative)
        }
        let destinationPath = destination + "/" + path.relative
        // libarchive writes paths longer than PATH_MAX by chdir-ing into them, and the working
        // directory is the whole process's: another thread's relative paths would move with it.
        guard destinationPath.utf8.count < Int(PATH_MAX) else {
            throw .entryRefused(layer: layer, path: rawPath, reason: "path longer than PATH_MAX once unpacked")
        }
        archive_entry_set_pathname(entry, destinationPath)
    }

    /// Writes the entry's header (creating the file, directory or link) and then its data.
    private func write(_ entry: OpaquePointer, rawPath: String, reader: OpaquePointer, writer: OpaquePointer) throws(ImageError) {
        guard archive_write_header(writer, entry) >= ARCHIVE_WARN else { throw archiveError(rawPath, message(writer)) }
        if archive_entry_size(entry) > 0 {
            var block: UnsafeRawPointer?
            var size = 0
            var offset: la_int64_t = 0
            while true {
                let status = archive_read_data_block(reader, &block, &size, &offset)
                if status == ARCHIVE_EOF { break }
                guard status >= ARCHIVE_WARN else { throw archiveError(rawPath, message(reader)) }
                guard archive_write_data_block(writer, block, size, offset) >= Int(ARCHIVE_WARN) else {
                    throw archiveError(rawPath, message(writer))
                }
            }
        }
        guard archive_write_finish_entry(writer) >= ARCHIVE_WARN else { throw archiveError(rawPath, message(writer)) }
    }

    /// An overlayfs whiteout at `hidden`: a character device 0/0, mode 0, owned like the OCI
    /// whiteout entry. Written through libarchive so that its path gets the same secure checks.
    private func writeWhiteout(at hidden: LayerEntryPath, like original: OpaquePointer, rawPath: String, writer: OpaquePointer) throws(ImageError) {
        guard let entry = archive_entry_new() else { throw archiveError(rawPath, "archive_entry_new failed") }
        defer { archive_entry_free(entry) }
        archive_entry_set_pathname(entry, destination + "/" + hidden.relative)
        archive_entry_set_filetype(entry, UInt32(S_IFCHR as mode_t))
        archive_entry_set_perm(entry, 0)
        archive_entry_set_rdev(entry, 0)
        archive_entry_set_uid(entry, archive_entry_uid(original))
        archive_entry_set_gid(entry, archive_entry_gid(original))
        archive_entry_set_mtime(entry, archive_entry_mtime(original), archive_entry_mtime_nsec(original))
        guard archive_write_header(writer, entry) >= ARCHIVE_WARN, archive_write_finish_entry(writer) >= ARCHIVE_WARN else {
            throw archiveError(rawPath, "whiteout for \"\(hidden.relative)\": \(message(writer))")
        }
    }

    private func message(_ archive: OpaquePointer) -> String {
        archive_error_string(archive).map { String(cString: $0) } ?? "libarchive error \(archive_errno(archive))"
    }

    private func archiveError(_ path: String?, _ message: String) -> ImageError {
        .archive(layer: layer, path: path, message: message)
    }
}
