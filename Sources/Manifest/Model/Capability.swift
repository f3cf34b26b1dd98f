/// A Linux capability (capabilities(7)), by the number the kernel gives it.
public enum Capability: String, ManifestEnum, Hashable {
    case CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID, CAP_KILL, CAP_SETGID,
        CAP_SETUID, CAP_SETPCAP, CAP_LINUX_IMMUTABLE, CAP_NET_BIND_SERVICE, CAP_NET_BROADCAST, CAP_NET_ADMIN,
        CAP_NET_RAW, CAP_IPC_LOCK, CAP_IPC_OWNER, CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_CHROOT, CAP_SYS_PTRACE,
        CAP_SYS_PACCT, CAP_SYS_ADMIN, CAP_SYS_BOOT, CAP_SYS_NICE, CAP_SYS_RESOURCE, CAP_SYS_TIME,
        CAP_SYS_TTY_CONFIG, CAP_MKNOD, CAP_LEASE, CAP_AUDIT_WRITE, CAP_AUDIT_CONTROL, CAP_SETFCAP,
        CAP_MAC_OVERRIDE, CAP_MAC_ADMIN, CAP_SYSLOG, CAP_WAKE_ALARM, CAP_BLOCK_SUSPEND, CAP_AUDIT_READ,
        CAP_PERFMON, CAP_BPF, CAP_CHECKPOINT_RESTORE

    public static var typeDescription: String { "capability" }

    /// The bit number in the kernel's capability sets (linux/capability.h); the order of the
    /// cases above follows it.
    public var number: Int {
        Self.allCases.firstIndex(of: self) ?? 0
    }

    /// Accepts `NET_BIND_SERVICE` and any case, as Docker does; written back with `CAP_`.
    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> Capability? {
        let names = allCases.map(\.rawValue)
        guard case .string(let text) = json else {
            issues.report(path(), "must be a capability name such as \"CAP_NET_BIND_SERVICE\", not \(json.kindDescription)")
            return nil
        }
        let upper = text.uppercased()
        if let capability = Capability(rawValue: upper.hasPrefix("CAP_") ? upper : "CAP_" + upper) { return capability }
        if upper == "ALL" || upper == "CAP_ALL" {
            issues.report(path(), "\"\(text)\" is not accepted; list the capabilities the service needs, each by name")
            return nil
        }
        let guess = Suggestion.closest(to: upper.hasPrefix("CAP_") ? upper : "CAP_" + upper, among: names)
        issues.report(path(), "\"\(text)\" is not a Linux capability\(guess.map { "; did you mean \"\($0)\"?" } ?? "; see capabilities(7) for the names")")
        return nil
    }
}
