import CSpawn
import Glibc

/// The users and groups of a root filesystem, read from its /etc/passwd and /etc/group.
/// Read by the parent before launch: the child cannot parse files (DESIGN.md §2).
struct PasswdDatabase: Sendable {
    struct User: Sendable, Hashable {
        var name: String
        var uid: UInt32
        var gid: UInt32
        var home: String
    }

    struct Group: Sendable, Hashable {
        var name: String
        var gid: UInt32
        var members: [String]
    }

    var users: [User]
    var groups: [Group]

    /// Parses passwd(5) and group(5) text; malformed lines are skipped, as glibc does.
    /// Split on bytes, not Characters: this runs on every launch.
    init(passwd: String, group: String) {
        users = Self.records(passwd, fields: 7).compactMap { fields in
            guard let uid = UInt32(fields[2]), let gid = UInt32(fields[3]) else { return nil }
            return User(name: fields[0], uid: uid, gid: gid, home: fields[5])
        }
        groups = Self.records(group, fields: 4).compactMap { fields in
            guard let gid = UInt32(fields[2]) else { return nil }
            let members = fields[3].utf8.split(separator: UInt8(ascii: ",")).map { String(decoding: $0, as: UTF8.self) }
            return Group(name: fields[0], gid: gid, members: members)
        }
    }

    /// The lines of `text` with at least `fields` colon-separated fields, split into fields.
    private static func records(_ text: String, fields: Int) -> [[String]] {
        text.utf8.split(separator: UInt8(ascii: "\n")).compactMap { line in
            let parts = line.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
            guard parts.count >= fields else { return nil }
            return parts.map { String(decoding: $0, as: UTF8.self) }
        }
    }

    /// Reads `etc/passwd` and `etc/group` of `root` as if chrooted there (openat2
    /// RESOLVE_IN_ROOT), so an image's absolute symlink cannot make us read a host file.
    /// Missing files, or a missing root, are empty databases: numeric ids still resolve, and a
    /// missing root is then reported by the launch stage that needs it, with its exact message.
    /// With a `cache`, files whose identity (fstat of the descriptor just opened) is unchanged
    /// since the last read of this root are not read and parsed again.
    static func read(root: String, cache: PasswdDatabaseCache? = nil) throws(SpawnError) -> PasswdDatabase {
        let rootFD = fl_open_directory_path(root)
        guard rootFD >= 0 else { return PasswdDatabase(passwd: "", group: "") }
        defer { close(rootFD) }
        let passwd = try openFile(rootFD, root: root, path: "/etc/passwd")
        defer { if passwd >= 0 { close(passwd) } }
        let group = try openFile(rootFD, root: root, path: "/etc/group")
        defer { if group >= 0 { close(group) } }
        let stamps = [FileStamp(descriptor: passwd), FileStamp(descriptor: group)]
        // An open file without a stamp (fstat failed) must not pass for a missing one.
        let cache = zip([passwd, group], stamps).allSatisfy { $0.0 < 0 || $0.1 != nil } ? cache : nil
        if let cached = cache?.database(root: root, stamps: stamps) { return cached }
        let database = PasswdDatabase(passwd: try readFile(passwd, root: root, path: "/etc/passwd"),
                                      group: try readFile(group, root: root, path: "/etc/group"))
        cache?.store(database, root: root, stamps: stamps)
        return database
    }

    /// The file opened in the root, or -1 when it does not exist.
    private static func openFile(_ rootFD: Int32, root: String, path: String) throws(SpawnError) -> Int32 {
        let fd = fl_open_in_root(rootFD, path, O_RDONLY)
        if fd < 0 {
            if errno == ENOENT { return -1 }
            throw .unknownIdentity(SystemCallError.last("openat2", root + path).description)
        }
        return fd
    }

    /// The whole file behind `fd` (empty for -1).
    private static func readFile(_ fd: Int32, root: String, path: String) throws(SpawnError) -> String {
        guard fd >= 0 else { return "" }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw .unknownIdentity(SystemCallError.last("read", root + path).description) }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Resolves a `UserSpec` like runc's user.GetExecUser: numbers need no entry; names must
    /// exist; the primary group comes from the passwd entry unless given; supplementary groups
    /// are the primary group, the user's memberships in /etc/group and the additional ones. `source` names the root
    /// in error messages.
    func resolve(_ spec: UserSpec, source: String) throws(SpawnError) -> ResolvedIdentity {
        let user: User?
        let uid: UInt32
        if let number = UInt32(spec.user) {
            uid = number
            user = users.first { $0.uid == number }
        } else if let entry = users.first(where: { $0.name == spec.user }) {
            uid = entry.uid
            user = entry
        } else {
            throw .unknownIdentity("user \"\(spec.user)\" not found in \(source)/etc/passwd")
        }
        let gid: UInt32
        if let group = spec.group {
            gid = try resolveGroup(group, source: source)
        } else {
            gid = user?.gid ?? 0
        }
        // initgroups(3) semantics: the primary group, then every group listing the user.
        var supplementary: [UInt32] = [gid]
        if let name = user?.name {
            supplementary += groups.filter { $0.members.contains(name) }.map(\.gid)
        }
        for extra in spec.additionalGroups {
            supplementary.append(try resolveGroup(extra, source: source))
        }
        var seen = Set<UInt32>()
        supplementary = supplementary.filter { seen.insert($0).inserted }
        return ResolvedIdentity(uid: uid, gid: gid, groups: supplementary, home: user?.home ?? "/")
    }

    private func resolveGroup(_ group: String, source: String) throws(SpawnError) -> UInt32 {
        if let number = UInt32(group) { return number }
        guard let entry = groups.first(where: { $0.name == group }) else {
            throw .unknownIdentity("group \"\(group)\" not found in \(source)/etc/group")
        }
        return entry.gid
    }
}

/// A user spec resolved to numbers.
struct ResolvedIdentity: Sendable, Hashable {
    var uid: UInt32
    var gid: UInt32
    var groups: [UInt32]
    var home: String
}
