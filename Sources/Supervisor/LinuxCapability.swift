/// Linux capabilities, numbered as in <linux/capability.h> (capabilities(7)).
public enum LinuxCapability: Int, Sendable, Hashable, CaseIterable, Comparable {
    case chown = 0, dacOverride, dacReadSearch, fowner, fsetid, kill, setgid, setuid, setpcap
    case linuxImmutable, netBindService, netBroadcast, netAdmin, netRaw, ipcLock, ipcOwner, sysModule
    case sysRawio, sysChroot, sysPtrace, sysPacct, sysAdmin, sysBoot, sysNice, sysResource, sysTime
    case sysTtyConfig, mknod, lease, auditWrite, auditControl, setfcap, macOverride, macAdmin, syslog
    case wakeAlarm, blockSuspend, auditRead, perfmon, bpf, checkpointRestore

    /// The kernel's name, e.g. `CAP_NET_BIND_SERVICE`.
    public var name: String { "CAP_" + Self.names[rawValue] }

    /// Parses `CAP_NET_BIND_SERVICE`, `NET_BIND_SERVICE` or `net_bind_service`.
    public init?(name: String) {
        var upper = name.uppercased()
        if upper.hasPrefix("CAP_") { upper.removeFirst(4) }
        guard let index = Self.names.firstIndex(of: upper) else { return nil }
        self.init(rawValue: index)
    }

    /// By number, as the kernel orders them.
    public static func < (lhs: LinuxCapability, rhs: LinuxCapability) -> Bool { lhs.rawValue < rhs.rawValue }

    private static let names = [
        "CHOWN", "DAC_OVERRIDE", "DAC_READ_SEARCH", "FOWNER", "FSETID", "KILL", "SETGID", "SETUID", "SETPCAP",
        "LINUX_IMMUTABLE", "NET_BIND_SERVICE", "NET_BROADCAST", "NET_ADMIN", "NET_RAW", "IPC_LOCK", "IPC_OWNER",
        "SYS_MODULE", "SYS_RAWIO", "SYS_CHROOT", "SYS_PTRACE", "SYS_PACCT", "SYS_ADMIN", "SYS_BOOT", "SYS_NICE",
        "SYS_RESOURCE", "SYS_TIME", "SYS_TTY_CONFIG", "MKNOD", "LEASE", "AUDIT_WRITE", "AUDIT_CONTROL", "SETFCAP",
        "MAC_OVERRIDE", "MAC_ADMIN", "SYSLOG", "WAKE_ALARM", "BLOCK_SUSPEND", "AUDIT_READ", "PERFMON", "BPF",
        "CHECKPOINT_RESTORE",
    ]
}

extension Set where Element == LinuxCapability {
    /// Bit n set for capability n, as capset(2) and /proc/PID/status (CapEff) show it.
    public var mask: UInt64 {
        reduce(0) { $0 | (1 << UInt64($1.rawValue)) }
    }
}
