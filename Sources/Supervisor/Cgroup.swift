import CSpawn
import Glibc

/// The node-level parent cgroup (`flotilla/` by default) in every hierarchy this host has; each
/// instance gets one cgroup below it. Which hierarchy a controller is used in follows the layout:
/// a controller mounted as v1 is used there, otherwise cgroup2's if it offers it.
public struct CgroupTree: Sendable {
    /// The host's hierarchies.
    public let layout: CgroupLayout
    /// The parent's path below each hierarchy's mount point, e.g. `flotilla`.
    public let parentName: String
    /// v1 controllers instances join, each with its hierarchy's mount point.
    let legacyControllers: [String: String]
    /// Controllers used through cgroup2.
    let unifiedControllers: Set<String>
    /// What the kernel offers, checked once on the parent rather than at every launch.
    let features: CgroupFeatures

    /// The controllers limits may use.
    static let limitControllers: Set<String> = ["memory", "cpu", "pids"]

    /// Creates the parent cgroup wherever it is missing and, on cgroup2, enables the limit
    /// controllers for its children (the mount root's and the parent's cgroup.subtree_control).
    public init(layout: CgroupLayout, parentName: String = "flotilla") throws(SystemCallError) {
        self.layout = layout
        self.parentName = parentName
        var legacy: [String: String] = [:]
        for controller in Self.limitControllers {
            if let mount = layout.legacyMounts[controller] { legacy[controller] = mount }
        }
        // Without cgroup2 the v1 freezer kills the whole cgroup and cpuacct counts CPU time;
        // with it (hybrid), cgroup.kill and cpu.stat do, and fewer cgroups make a faster start.
        if layout.unifiedMount == nil {
            for controller in ["cpuacct", "freezer"] {
                if let mount = layout.legacyMounts[controller] { legacy[controller] = mount }
            }
        }
        legacyControllers = legacy
        if layout.unifiedMount != nil {
            unifiedControllers = Self.limitControllers.subtracting(legacy.keys).intersection(layout.unifiedControllers)
        } else {
            unifiedControllers = []
        }
        for directory in Self.parentDirectories(layout: layout, legacy: legacy, parentName: parentName) {
            if mkdir(directory, 0o755) != 0 && errno != EEXIST { throw .last("mkdir", directory) }
        }
        if let unified = layout.unifiedMount, !unifiedControllers.isEmpty {
            try Self.enableControllers(unifiedControllers, in: unified)
            try Self.enableControllers(unifiedControllers, in: unified + "/" + parentName)
        }
        let unifiedParent = layout.unifiedMount.map { $0 + "/" + parentName }
        features = CgroupFeatures(
            // memsw exists only with swap accounting (swapaccount=1); the root shows whether it does.
            memswLimit: legacy["memory"].map { FileIO.exists($0 + "/memory.memsw.limit_in_bytes") } ?? false,
            // The parent has what its children will have: memory.swap.max once memory is enabled,
            // cgroup.kill on kernels since 5.14.
            swapMax: unifiedParent.map { FileIO.exists($0 + "/memory.swap.max") } ?? false,
            kill: unifiedParent.map { FileIO.exists($0 + "/cgroup.kill") } ?? false)
    }

    /// The parent in every hierarchy: cgroup2's first, then each distinct v1 mount.
    public var parentDirectories: [String] {
        Self.parentDirectories(layout: layout, legacy: legacyControllers, parentName: parentName)
    }

    private static func parentDirectories(layout: CgroupLayout, legacy: [String: String], parentName: String)
        -> [String]
    {
        var directories: [String] = []
        if let unified = layout.unifiedMount { directories.append(unified + "/" + parentName) }
        for mount in Set(legacy.values).sorted() { directories.append(mount + "/" + parentName) }
        return directories
    }

    /// Begins the cgroup of one instance with what a launch needs before clone3: the cgroup2
    /// directory and its limits (CLONE_INTO_CGROUP needs it to exist). The v1 directories follow
    /// with `InstanceCgroup.makeLegacy`, while the child sets up its filesystem. On failure
    /// nothing is left behind.
    func beginInstance(_ instanceID: String, limits: CgroupLimits) throws(SpawnError) -> InstanceCgroup {
        let missing = limits.controllers.subtracting(legacyControllers.keys).subtracting(unifiedControllers)
        if let controller = missing.sorted().first {
            throw .cgroup(SystemCallError(call: "cgroup controller", path: controller, errno: ENODEV))
        }
        let cgroup = InstanceCgroup(
            unifiedPath: layout.unifiedMount.map { "\($0)/\(parentName)/\(instanceID)" },
            legacyPaths: legacyControllers.mapValues { "\($0)/\(parentName)/\(instanceID)" },
            unifiedRelativePath: layout.unifiedMount.map { _ in "/\(parentName)/\(instanceID)" },
            features: features)
        guard let unifiedPath = cgroup.unifiedPath else { return cgroup }
        do throws(SystemCallError) {
            guard mkdir(unifiedPath, 0o755) == 0 else { throw SystemCallError.last("mkdir", unifiedPath) }
            do {
                try cgroup.applyUnified(limits)
            } catch {
                rmdir(unifiedPath)
                throw error
            }
        } catch {
            throw .cgroup(error)
        }
        return cgroup
    }

    /// Removes the parent cgroup from every hierarchy (it must hold no instance).
    public func removeParent() throws(SystemCallError) {
        for directory in parentDirectories.reversed() {
            if rmdir(directory) != 0 && errno != ENOENT { throw .last("rmdir", directory) }
        }
    }
}

/// One instance's cgroup, in every hierarchy it spans.
public struct InstanceCgroup: Sendable, Hashable {
    /// Its cgroup2 directory (cgroup2-only and hybrid hosts).
    public let unifiedPath: String?
    /// Its v1 directory for each v1 controller (co-mounted controllers share one).
    public let legacyPaths: [String: String]
    /// Its cgroup2 path as /proc/PID/cgroup shows it (`/flotilla/web-1`), when it has one.
    public let unifiedRelativePath: String?
    let features: CgroupFeatures
    /// Every v1 directory, each once (co-mounted controllers share one), in a fixed order.
    let legacyDirectories: [String]
    /// Every directory: cgroup2's first, then each distinct v1 one.
    public let directories: [String]

    /// An instance cgroup from its directories.
    init(unifiedPath: String?, legacyPaths: [String: String], unifiedRelativePath: String?, features: CgroupFeatures) {
        self.unifiedPath = unifiedPath
        self.legacyPaths = legacyPaths
        self.unifiedRelativePath = unifiedRelativePath
        self.features = features
        legacyDirectories = Set(legacyPaths.values).sorted()
        directories = (unifiedPath.map { [$0] } ?? []) + legacyDirectories
    }

    /// The directory holding `controller`'s files.
    func directory(for controller: String) -> String? {
        legacyPaths[controller] ?? unifiedPath
    }

    /// The limits of controllers on cgroup2 (those no v1 hierarchy holds).
    func applyUnified(_ limits: CgroupLimits) throws(SystemCallError) {
        guard let unifiedPath else { return }
        for write in limits.unifiedWrites(swapFileExists: features.swapMax) where legacyPaths[write.controller] == nil {
            try FileIO.write(write.value, to: unifiedPath + "/" + write.file)
        }
    }

    /// Makes the v1 directories and writes their limits. On failure the ones it made are removed.
    func makeLegacy(limits: CgroupLimits) throws(SystemCallError) {
        var created: [String] = []
        do throws(SystemCallError) {
            for directory in legacyDirectories {
                guard mkdir(directory, 0o755) == 0 else { throw SystemCallError.last("mkdir", directory) }
                created.append(directory)
            }
            for write in limits.legacyWrites(memswFileExists: features.memswLimit) {
                guard let directory = legacyPaths[write.controller] else { continue }
                try FileIO.write(write.value, to: directory + "/" + write.file)
            }
        } catch {
            for directory in created.reversed() { rmdir(directory) }
            throw error
        }
    }

    /// The id of the cgroup2 cgroup now at `unifiedPath` (its directory's inode number, which is
    /// what the kernel reports as a process's cgroup id), or nil without one.
    public var unifiedID: UInt64? {
        unifiedPath.flatMap(Self.cgroupID(atPath:))
    }

    /// The id of the cgroup2 cgroup whose directory is `path`.
    static func cgroupID(atPath path: String) -> UInt64? {
        cgroupID { stat(path, &$0) }
    }

    /// The id of the cgroup2 cgroup whose directory `fd` holds open.
    static func cgroupID(ofDirectory fd: Int32) -> UInt64? {
        fd < 0 ? nil : cgroupID { fstat(fd, &$0) }
    }

    /// The inode number `fill` stats, which for a cgroup2 directory is the cgroup's id.
    private static func cgroupID(_ fill: (inout stat) -> Int32) -> UInt64? {
        var info = stat()
        guard fill(&info) == 0 else { return nil }
        return UInt64(info.st_ino)
    }

    /// The cgroup2 directory for CLONE_INTO_CGROUP, or -1 without one. The caller closes it.
    func openUnifiedDirectory() throws(SystemCallError) -> Int32 {
        guard let unifiedPath else { return -1 }
        let fd = fl_open_directory_path(unifiedPath)
        guard fd >= 0 else { throw .last("open", unifiedPath) }
        return fd
    }

    /// Each v1 `tasks` file, in `legacyDirectories` order, open for the launch: the child, still
    /// single-threaded, moves itself by writing "0" to each (see fl_spawn_finish). The caller
    /// closes them.
    func openLegacyTasks() throws(SystemCallError) -> [Int32] {
        var descriptors: [Int32] = []
        for directory in legacyDirectories {
            let path = directory + "/tasks"
            let fd = open(path, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let error = SystemCallError.last("open", path)
                for fd in descriptors { close(fd) }
                throw error
            }
            descriptors.append(fd)
        }
        return descriptors
    }

    /// Kills every process in the cgroup: cgroup.kill where cgroup2 has it (5.14+), else the v1
    /// freezer's freeze-and-kill, else SIGKILL to each listed pid. When cgroup.kill or the
    /// freezer fails (a write refused: a read-only mount, an LSM; the supervisor out of
    /// descriptors), each listed pid is sent SIGKILL all the same, as systemd does after "Failed
    /// to kill control group", and the error is thrown so that the caller can say so and try again.
    public func kill() throws(SystemCallError) {
        guard let any = directories.first else { return }
        do throws(SystemCallError) {
            if let unifiedPath, features.kill {
                try FileIO.write("1", to: unifiedPath + "/cgroup.kill")
            } else if let freezer = legacyPaths["freezer"] {
                try Self.legacyFreezeAndKill(freezer)
            } else {
                try Self.killEachListed(in: any)
            }
        } catch {
            // Gone: removed after its last process exited (a retried kill racing the cleanup).
            if error.errno == ENOENT { return }
            try? Self.killEachListed(in: any)
            throw error
        }
    }

    /// SIGKILL to each pid listed in `directory`, listing again until a pass finds no pid it has
    /// not signalled (a process may fork between listing and killing). Not atomic as cgroup.kill
    /// is: a pid may be reused between listing and kill, a window of microseconds.
    static func killEachListed(in directory: String) throws(SystemCallError) {
        var signalled = Set<pid_t>()
        for _ in 0..<100 {
            let fresh = try processes(in: directory).filter { !signalled.contains($0) }
            if fresh.isEmpty { return }
            for pid in fresh { Glibc.kill(pid, SIGKILL) }
            signalled.formUnion(fresh)
        }
    }

    /// Whether any process is still in the cgroup (cgroup.events on cgroup2, cgroup.procs on v1).
    public func isPopulated() throws(SystemCallError) -> Bool {
        if let unifiedPath { return try Self.unifiedPopulated(unifiedPath) }
        guard let any = directories.first else { return false }
        return try !Self.processes(in: any).isEmpty
    }

    /// Waits until the cgroup is empty, re-killing on v1 without a freezer (where a process may
    /// fork between listing and killing). Returns false if `deadline` passes first.
    func waitUntilEmpty(deadline: ContinuousClock.Instant) throws(SystemCallError) -> Bool {
        var pause = Duration.microseconds(50)
        while try isPopulated() {
            if ContinuousClock.now >= deadline { return false }
            if unifiedPath == nil, legacyPaths["freezer"] == nil { try kill() }
            Self.sleep(pause)
            pause = min(pause * 2, .milliseconds(10))
        }
        return true
    }

    /// Removes every directory of the cgroup. An rmdir can see EBUSY for a moment after the last
    /// process exits; it is retried until `deadline`.
    public func remove(deadline: ContinuousClock.Instant) throws(SystemCallError) {
        try remove(directories, deadline: deadline)
    }

    private func remove(_ directories: [String], deadline: ContinuousClock.Instant) throws(SystemCallError) {
        var pause = Duration.microseconds(50)
        for directory in directories {
            while rmdir(directory) != 0 {
                if errno == ENOENT { break }
                if errno != EBUSY || ContinuousClock.now >= deadline { throw .last("rmdir", directory) }
                Self.sleep(pause)
                pause = min(pause * 2, .milliseconds(10))
            }
        }
    }

    /// Removes the cgroup if it holds no process: false, with nothing removed, if its first
    /// directory (cgroup2's, whose rmdir fails exactly while it is populated) is busy.
    func removeIfEmpty(deadline: ContinuousClock.Instant) throws(SystemCallError) -> Bool {
        let all = directories
        guard let first = all.first else { return true }
        if rmdir(first) != 0 {
            if errno == EBUSY { return false }
            if errno != ENOENT { throw .last("rmdir", first) }
        }
        try remove(Array(all.dropFirst()), deadline: deadline)
        return true
    }

    /// Memory, CPU and pids use, and the OOM kill count.
    public func stats() throws(SystemCallError) -> CgroupStats {
        var stats = CgroupStats(oomKillCount: try oomKillCount())
        if let memory = legacyPaths["memory"] {
            stats.memoryCurrentBytes = try Self.number(memory + "/memory.usage_in_bytes")
            stats.memoryPeakBytes = try Self.number(memory + "/memory.max_usage_in_bytes")
        } else if let unifiedPath, FileIO.exists(unifiedPath + "/memory.current") {
            stats.memoryCurrentBytes = try Self.number(unifiedPath + "/memory.current")
            if FileIO.exists(unifiedPath + "/memory.peak") {
                stats.memoryPeakBytes = try Self.number(unifiedPath + "/memory.peak")
            }
        }
        if let cpuacct = legacyPaths["cpuacct"] {
            stats.cpuUsage = .nanoseconds(Int64(clamping: try Self.number(cpuacct + "/cpuacct.usage")))
        } else if let unifiedPath {
            let cpuStat = try FileIO.readText(unifiedPath + "/cpu.stat")
            stats.cpuUsage = FileIO.keyedValue("usage_usec", in: cpuStat).map { .microseconds(Int64(clamping: $0)) }
        }
        if let pids = directory(for: "pids"), FileIO.exists(pids + "/pids.current") {
            stats.pidsCurrent = try Self.number(pids + "/pids.current")
        }
        return stats
    }

    /// OOM kills in the cgroup so far: `oom_kill` of memory.oom_control (v1, since 4.13) or of
    /// memory.events (cgroup2). Zero without a memory controller.
    public func oomKillCount() throws(SystemCallError) -> UInt64 {
        let file: String
        if let memory = legacyPaths["memory"] {
            file = memory + "/memory.oom_control"
        } else if let unifiedPath, FileIO.exists(unifiedPath + "/memory.events") {
            file = unifiedPath + "/memory.events"
        } else {
            return 0
        }
        return FileIO.keyedValue("oom_kill", in: try FileIO.readText(file)) ?? 0
    }

    static func number(_ path: String) throws(SystemCallError) -> UInt64 {
        let text = try FileIO.readText(path).trimmingNewlines
        guard let value = UInt64(text) else { throw SystemCallError(call: "parse", path: path, errno: EINVAL) }
        return value
    }

    /// The pids listed in a cgroup.procs (as the supervisor's pid namespace sees them). A process
    /// outside that namespace is listed as 0, which is left out: kill(0, SIGKILL) would kill the
    /// supervisor's own process group.
    static func processes(in directory: String) throws(SystemCallError) -> [pid_t] {
        try FileIO.readText(directory + "/cgroup.procs").split(separator: "\n").compactMap { pid_t($0) }.filter { $0 > 0 }
    }

    static func sleep(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }
}

/// Optional cgroup files, probed once per tree.
struct CgroupFeatures: Sendable, Hashable {
    /// v1 memory.memsw.limit_in_bytes (swap accounting).
    var memswLimit: Bool
    /// cgroup2 memory.swap.max.
    var swapMax: Bool
    /// cgroup2 cgroup.kill (Linux 5.14).
    var kill: Bool
}

extension String {
    var trimmingNewlines: Substring {
        var text = self[...]
        while let last = text.last, last == "\n" || last == " " { text.removeLast() }
        return text
    }
}
