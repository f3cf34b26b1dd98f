import CSeccomp
import CSpawn
import Glibc
import Synchronization

/// The default seccomp filter, compiled to BPF by libseccomp in the supervisor and loaded by the
/// child with the raw seccomp(2) call (the child cannot run libseccomp: DESIGN.md §2).
///
/// Docker's default profile (moby/profiles/seccomp/default.json) allows a list and refuses the
/// rest with EPERM; this is the same policy written the other way round: allow by default, refuse
/// what Docker leaves out. Calls Docker grants with a capability are allowed when the service
/// keeps that capability. `clone` with namespace flags is refused unless CAP_SYS_ADMIN is kept;
/// `clone3`, whose flags sit behind a pointer a filter cannot read, fails with ENOSYS so that
/// glibc falls back to `clone` (Docker does the same). Other architectures' system call numbers
/// (int 0x80, x32) kill the process: a deny-list must not be bypassed through them.
/// Not covered: `personality` values (Docker allows five); the call stays allowed.
enum SeccompFilter {
    /// Refused whatever the capabilities.
    static let alwaysDenied = [
        "add_key", "create_module", "get_kernel_syms", "io_uring_enter", "io_uring_register", "io_uring_setup",
        "kexec_file_load", "kexec_load", "keyctl", "nfsservctl", "query_module", "request_key", "swapoff", "swapon",
        "_sysctl", "sysfs", "uselib", "userfaultfd", "ustat", "vm86", "vm86old",
    ]

    /// Refused unless the service keeps the capability (Docker's `includes.caps`).
    static let deniedWithoutCapability: [(LinuxCapability, [String])] = [
        (
            .sysAdmin,
            [
                "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick", "lookup_dcookie", "mount", "mount_setattr",
                "move_mount", "name_to_handle_at", "open_tree", "quotactl", "quotactl_fd", "setdomainname",
                "sethostname", "setns", "umount", "umount2", "unshare",
            ]
        ),
        (.sysBoot, ["reboot"]),
        (.sysChroot, ["chroot"]),
        (.sysModule, ["delete_module", "finit_module", "init_module"]),
        (.sysPacct, ["acct"]),
        (.sysPtrace, ["kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev", "ptrace"]),
        (.sysRawio, ["ioperm", "iopl"]),
        (.sysTime, ["clock_adjtime", "clock_settime", "settimeofday", "stime"]),
        (.sysTtyConfig, ["vhangup"]),
        (.sysNice, ["get_mempolicy", "mbind", "move_pages", "set_mempolicy", "set_mempolicy_home_node"]),
        (.syslog, ["syslog"]),
        (.dacReadSearch, ["open_by_handle_at"]),
    ]

    /// Either of these also allows bpf(2) and perf_event_open(2) (Docker: CAP_SYS_ADMIN or the
    /// newer, narrower CAP_BPF / CAP_PERFMON).
    static let deniedWithoutEither: [(LinuxCapability, LinuxCapability, String)] = [
        (.sysAdmin, .bpf, "bpf"),
        (.sysAdmin, .perfmon, "perf_event_open"),
    ]

    /// CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET, and CLONE_NEWTIME.
    static let namespaceCloneFlags: [UInt64] = [
        0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000, 0x0000_0080,
    ]

    /// The capabilities that change the filter (the cache key).
    static let relevantCapabilities: Set<LinuxCapability> = Set(
        deniedWithoutCapability.map(\.0) + deniedWithoutEither.flatMap { [$0.0, $0.1] })

    /// The calls refused outright (EPERM) for a service keeping `capabilities`; on top of these,
    /// without CAP_SYS_ADMIN, `clone` with any of `namespaceCloneFlags` (EPERM) and `clone3` (ENOSYS).
    static func deniedCalls(keeping capabilities: Set<LinuxCapability>) -> [String] {
        var denied = alwaysDenied
        for (capability, calls) in deniedWithoutCapability where !capabilities.contains(capability) {
            denied += calls
        }
        for (first, second, call) in deniedWithoutEither
        where !capabilities.contains(first) && !capabilities.contains(second) {
            denied.append(call)
        }
        return denied
    }

    /// The BPF program (an array of struct sock_filter) for a profile and the capabilities kept.
    static func compile(keeping capabilities: Set<LinuxCapability>) throws(SystemCallError) -> [UInt8] {
        guard let context = seccomp_init(SCMP_ACT_ALLOW) else {
            throw SystemCallError(call: "seccomp_init", errno: ENOMEM)
        }
        defer { seccomp_release(context) }
        // A binary tree of syscall numbers instead of a linear chain: the kernel emulates the
        // filter for every syscall number when it is loaded (its action cache), and the service
        // runs it on every call the cache cannot answer; both get cheaper.
        let optimized = seccomp_attr_set(context, SCMP_FLTATR_CTL_OPTIMIZE, 2)
        guard optimized == 0 else { throw SystemCallError(call: "seccomp_attr_set SCMP_FLTATR_CTL_OPTIMIZE", errno: -optimized) }
        let eperm = UInt32(0x0005_0000) | UInt32(EPERM)
        let enosys = UInt32(0x0005_0000) | UInt32(ENOSYS)
        for name in deniedCalls(keeping: capabilities) {
            try addRule(context, action: eperm, name: name, comparisons: [])
        }
        if !capabilities.contains(.sysAdmin) {
            for flag in namespaceCloneFlags {
                let comparison = scmp_arg_cmp(arg: 0, op: SCMP_CMP_MASKED_EQ, datum_a: flag, datum_b: flag)
                try addRule(context, action: eperm, name: "clone", comparisons: [comparison])
            }
            try addRule(context, action: enosys, name: "clone3", comparisons: [])
        }
        return try export(context)
    }

    private static func addRule(_ context: scmp_filter_ctx, action: UInt32, name: String,
                                comparisons: [scmp_arg_cmp]) throws(SystemCallError)
    {
        let number = seccomp_syscall_resolve_name(name)
        // Not a call on this architecture (vm86 on x86_64, for instance): nothing to refuse.
        if number == __NR_SCMP_ERROR { return }
        let rc = comparisons.withUnsafeBufferPointer {
            seccomp_rule_add_array(context, action, number, UInt32($0.count), $0.baseAddress)
        }
        guard rc == 0 else { throw SystemCallError(call: "seccomp_rule_add", path: name, errno: -rc) }
    }

    /// seccomp_export_bpf writes to a descriptor (libseccomp 2.5 has no in-memory export):
    /// a memfd, read back.
    private static func export(_ context: scmp_filter_ctx) throws(SystemCallError) -> [UInt8] {
        let fd = fl_memfd("flotilla-seccomp")
        guard fd >= 0 else { throw .last("memfd_create") }
        defer { close(fd) }
        let rc = seccomp_export_bpf(context, fd)
        guard rc == 0 else { throw SystemCallError(call: "seccomp_export_bpf", errno: -rc) }
        let size = lseek(fd, 0, SEEK_END)
        guard size >= 0 else { throw .last("lseek") }
        var program = [UInt8](repeating: 0, count: Int(size))
        let n = program.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n == size else { throw .last("pread") }
        return program
    }
}

extension SeccompPolicy {
    /// What `.defaultDenyList` refuses with EPERM for a service keeping `capabilities` (besides
    /// `clone` with the `namespaceCloneFlags` and `clone3`, refused without CAP_SYS_ADMIN):
    /// for writing the same policy in other formats, such as an OCI bundle's.
    public static func defaultDeniedCalls(keeping capabilities: Set<LinuxCapability>) -> [String] {
        SeccompFilter.deniedCalls(keeping: capabilities)
    }

    /// The clone(2) flags that make `clone` fail without CAP_SYS_ADMIN (new namespaces).
    public static var namespaceCloneFlags: [UInt64] { SeccompFilter.namespaceCloneFlags }
}

/// Compiled filters by the capabilities that shape them: compiling costs about a millisecond,
/// every service with the same capabilities shares one program.
final class SeccompFilterCache: Sendable {
    private let programs = Mutex<[UInt64: [UInt8]]>([:])

    func program(for profile: SeccompPolicy, keeping capabilities: Set<LinuxCapability>) throws(SpawnError) -> [UInt8] {
        guard profile == .defaultDenyList else { return [] }
        let key = capabilities.intersection(SeccompFilter.relevantCapabilities).mask
        if let cached = programs.withLock({ $0[key] }) { return cached }
        let program: [UInt8]
        do {
            program = try SeccompFilter.compile(keeping: capabilities)
        } catch {
            throw .seccomp(error)
        }
        programs.withLock { $0[key] = program }
        return program
    }
}
