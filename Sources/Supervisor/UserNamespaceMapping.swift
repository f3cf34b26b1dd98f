/// How ids inside a user namespace map to ids outside (user_namespaces(7)).
public struct UserNamespaceMapping: Sendable, Hashable {
    /// uid ranges, written to /proc/PID/uid_map.
    public var uids: [IDRange]
    /// gid ranges, written to /proc/PID/gid_map.
    public var gids: [IDRange]

    /// A mapping from its uid and gid ranges.
    public init(uids: [IDRange], gids: [IDRange]) {
        self.uids = uids
        self.gids = gids
    }

    /// `count` ids starting at 0 inside map to `count` ids starting at `outsideStart` outside, for
    /// both uids and gids: the usual shape for one service.
    public static func shifted(to outsideStart: UInt32, count: UInt32 = 65536) -> UserNamespaceMapping {
        let range = IDRange(insideStart: 0, outsideStart: outsideStart, count: count)
        return UserNamespaceMapping(uids: [range], gids: [range])
    }
}

/// One line of a uid_map or gid_map file.
public struct IDRange: Sendable, Hashable {
    /// First id inside the namespace.
    public var insideStart: UInt32
    /// The id outside that `insideStart` maps to.
    public var outsideStart: UInt32
    /// How many consecutive ids.
    public var count: UInt32

    /// A range of `count` ids.
    public init(insideStart: UInt32, outsideStart: UInt32, count: UInt32) {
        self.insideStart = insideStart
        self.outsideStart = outsideStart
        self.count = count
    }
}

extension [IDRange] {
    /// The text the kernel expects: one `inside outside count` line per range, written in one
    /// write(2) (user_namespaces(7): the file can be written once).
    var mapFileText: String {
        map { "\($0.insideStart) \($0.outsideStart) \($0.count)\n" }.joined()
    }

    /// Whether `id` (inside) is mapped.
    func contains(inside id: UInt32) -> Bool {
        contains { id >= $0.insideStart && UInt64(id) < UInt64($0.insideStart) + UInt64($0.count) }
    }
}
