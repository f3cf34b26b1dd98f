/// The path of a layer entry inside the layer, normalized and checked before anything is written.
///
/// Tar writers spell one path several ways (`./usr/bin`, `usr//bin/`); OCI layers name paths
/// relative to the root. An entry is refused if its path is absolute or has a `..` component:
/// such a path is either an attack or a broken layer, and the kernel must never resolve it
/// against the host (OCI image-spec, "Changesets"; CVE-2019-14271 class of bugs).
struct LayerEntryPath: Sendable, Hashable {
    /// The components, none of them empty, `.` or `..`; empty for the layer's root itself.
    let components: [Substring]

    /// Why a path is refused, for `ImageError.entryRefused`.
    enum Refusal: Error, Equatable {
        case absolute
        case parentComponent
        case empty
    }

    init(_ raw: String) throws(Refusal) {
        guard !raw.isEmpty else { throw .empty }
        guard !raw.hasPrefix("/") else { throw .absolute }
        var components: [Substring] = []
        for component in raw.split(separator: "/", omittingEmptySubsequences: true) {
            if component == "." { continue }
            // Refused wherever it is, even `a/../b` that stays inside: no layer writer needs it,
            // and checking a resolved form invites mistakes.
            if component == ".." { throw .parentComponent }
            components.append(component)
        }
        self.components = components
    }

    /// `usr/bin/env`; empty for the root.
    var relative: String { components.joined(separator: "/") }

    /// The last component, nil for the root.
    var name: Substring? { components.last }

    /// The parent's path (the root's for a top-level entry).
    var parent: LayerEntryPath { LayerEntryPath(components: components.dropLast()) }

    /// The same directory with another last component.
    func sibling(named name: Substring) -> LayerEntryPath {
        LayerEntryPath(components: components.dropLast() + [name])
    }

    private init(components: some Sequence<Substring>) {
        self.components = Array(components)
    }
}

extension LayerEntryPath.Refusal: CustomStringConvertible {
    var description: String {
        switch self {
        case .absolute: "absolute path (layers name paths relative to their root)"
        case .parentComponent: "path has a \"..\" component, which could escape the layer"
        case .empty: "empty path"
        }
    }
}
