import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Removes a test's cgroup subtree from every hierarchy (v1 controllers and the unified one),
/// killing what still runs in it first, deepest cgroups first.
enum CgroupCleanup {
    static func hierarchies() -> [String] {
        guard let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return [] }
        return mounts.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 2, fields[2] == "cgroup" || fields[2] == "cgroup2" else { return nil }
            return String(fields[1])
        }
    }

    static func killAndRemove(parent: String) {
        for root in hierarchies() {
            let top = root + "/" + parent
            guard FileManager.default.fileExists(atPath: top) else { continue }
            var directories: [String] = []
            if let walker = FileManager.default.enumerator(atPath: top) {
                while let entry = walker.nextObject() as? String {
                    var isDirectory: ObjCBool = false
                    if FileManager.default.fileExists(atPath: top + "/" + entry, isDirectory: &isDirectory), isDirectory.boolValue {
                        directories.append(top + "/" + entry)
                    }
                }
            }
            directories.sort { $0.count > $1.count }
            directories.append(top)
            for _ in 0..<50 {
                var remaining = false
                for directory in directories {
                    if let procs = try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8) {
                        for pid in procs.split(separator: "\n").compactMap({ Int32($0) }) {
                            kill(pid, SIGKILL)
                            remaining = true
                        }
                    }
                    rmdir(directory)
                }
                if !remaining && !FileManager.default.fileExists(atPath: top) { break }
                usleep(50_000)
            }
        }
    }

    /// Whether any hierarchy still has the subtree.
    static func exists(parent: String) -> Bool {
        hierarchies().contains { FileManager.default.fileExists(atPath: $0 + "/" + parent) }
    }

    /// The cgroup directories below the parent, in every hierarchy (the parent itself not counted).
    static func children(parent: String) -> [String] {
        var children: [String] = []
        for root in hierarchies() {
            let top = root + "/" + parent
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: top) else { continue }
            for name in names {
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: top + "/" + name, isDirectory: &isDirectory), isDirectory.boolValue {
                    children.append(top + "/" + name)
                }
            }
        }
        return children
    }

    /// Pids in the subtree (all hierarchies, deduplicated).
    static func pids(parent: String) -> Set<Int32> {
        var pids = Set<Int32>()
        for root in hierarchies() {
            let top = root + "/" + parent
            guard let walker = FileManager.default.enumerator(atPath: top) else { continue }
            var directories = [top]
            while let entry = walker.nextObject() as? String { directories.append(top + "/" + entry) }
            for directory in directories {
                if let procs = try? String(contentsOfFile: directory + "/cgroup.procs", encoding: .utf8) {
                    pids.formUnion(procs.split(separator: "\n").compactMap { Int32($0) })
                }
            }
        }
        return pids
    }
}

/// Unmounts whatever is mounted below a directory (deepest first).
enum Mounts {
    static func under(_ directory: String) -> [String] {
        guard let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8) else { return [] }
        return mounts.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count > 1 else { return nil }
            let point = String(fields[1])
            return point.hasPrefix(directory) ? point : nil
        }.sorted { $0.count > $1.count }
    }

    static func unmountAll(under directory: String) {
        for point in under(directory) { umount2(point, Int32(MNT_DETACH)) }
    }
}
