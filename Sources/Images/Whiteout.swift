/// OCI whiteouts (image-spec "Representing Changes": `.wh.<name>` hides `<name>` of the layers
/// below; `.wh..wh..opq` in a directory hides everything below in that directory) and the
/// overlayfs form unpacking turns them into, so the layers can be stacked by the kernel as they
/// are: a whiteout is a character device 0/0 at `<name>`, an opaque directory has the
/// `trusted.overlay.opaque` xattr set to `y` (Documentation/filesystems/overlayfs.rst).
enum Whiteout: Equatable {
    /// `<dir>/.wh.<name>`: make `<dir>/<name>` a whiteout.
    case hide(LayerEntryPath)
    /// `<dir>/.wh..wh..opq`: make `<dir>` opaque.
    case opaque(directory: LayerEntryPath)

    static let prefix = ".wh."
    static let opaqueMarker = ".wh..wh..opq"
    static let opaqueAttribute = "trusted.overlay.opaque"

    /// What an entry at `path` means as a whiteout: nil for an ordinary entry. Other names
    /// beginning `.wh..wh.` (aufs's hard-link bookkeeping) and an empty `.wh.` are refused:
    /// overlayfs has no meaning for them, and silently dropping a whiteout would show files
    /// the image deleted.
    static func classify(_ path: LayerEntryPath) throws(WhiteoutRefusal) -> Whiteout? {
        guard let name = path.name, name.hasPrefix(prefix) else { return nil }
        if name == opaqueMarker { return .opaque(directory: path.parent) }
        let hidden = name.dropFirst(prefix.count)
        if hidden.isEmpty || hidden.hasPrefix(prefix) || hidden == "." || hidden == ".." {
            throw WhiteoutRefusal(name: String(name))
        }
        return .hide(path.sibling(named: hidden))
    }
}

/// A `.wh.` name that is not a whiteout overlayfs can represent.
struct WhiteoutRefusal: Error {
    let name: String
    var description: String { "\"\(name)\" is not a whiteout this store can represent" }
}
