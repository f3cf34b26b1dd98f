/// Linux namespaces a service can be given.
public enum NamespaceKind: String, ManifestEnum, Hashable {
    case pid, mount, uts, ipc, net, user, cgroup
    public static var typeDescription: String { "namespace" }

    /// What a service gets unless it says otherwise: everything but the user namespace (which
    /// needs id mappings) and the network namespace (which follows `network.mode`).
    public static let defaults: [NamespaceKind] = [.pid, .mount, .uts, .ipc, .cgroup]
}

/// The system call filter a service runs under.
public enum SeccompProfile: String, ManifestEnum {
    /// A deny-list like Docker's default: kernel modules, reboot, mount, ptrace and the like.
    case `default`
    /// No filter at all.
    case unconfined
    public static var typeDescription: String { "seccomp profile" }
}

/// Whether a service shares the host's network stack.
public enum NetworkMode: String, ManifestEnum {
    case host
    case `private`
    public static var typeDescription: String { "network mode" }
}

/// A port's transport protocol.
public enum PortProtocol: String, ManifestEnum {
    case tcp, udp
    public static var typeDescription: String { "protocol" }
}

/// When an instance counts as up (ready to receive traffic and to let a rollout proceed).
public enum ReadinessMode: String, ManifestEnum {
    /// As soon as the process has been executed.
    case exec
    /// At its first passing health check.
    case health
    /// When it sends `READY=1` on its `NOTIFY_SOCKET` (the sd_notify protocol).
    case notify
    public static var typeDescription: String { "readiness mode" }
}

/// When an instance that exited is started again.
public enum RestartPolicyKind: String, ManifestEnum {
    /// After every exit, successful or not.
    case always
    /// Only after a non-zero exit, a signal, an OOM kill, a failed health check or a missed watchdog.
    case onFailure = "on-failure"
    /// Never: the instance runs once (a batch job) and ends completed or failed.
    case never
    public static var typeDescription: String { "restart policy" }
}

/// How a mount is made.
public enum MountType: String, ManifestEnum {
    /// A host directory or file made visible inside the service.
    case bind
    /// A fresh in-memory filesystem.
    case tmpfs
    public static var typeDescription: String { "mount type" }
}

/// Comparison of a node attribute against a constraint's value.
public enum ConstraintOperator: String, ManifestEnum {
    case equal = "="
    case notEqual = "!="
    case `in` = "in"
    case notIn = "not in"
    case regex
    /// Version comparison: the value is a list such as ">= 6.1, < 7".
    case version
    public static var typeDescription: String { "operator" }
}

/// Signals a service can be asked to stop with.
public enum StopSignal: String, ManifestEnum {
    case SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2, SIGWINCH, SIGPWR, SIGKILL
    public static var typeDescription: String { "signal" }

    /// The Linux signal number (x86-64 and arm64 agree on these).
    public var number: Int32 {
        switch self {
        case .SIGHUP: 1
        case .SIGINT: 2
        case .SIGQUIT: 3
        case .SIGKILL: 9
        case .SIGUSR1: 10
        case .SIGUSR2: 12
        case .SIGTERM: 15
        case .SIGWINCH: 28
        case .SIGPWR: 30
        }
    }

    /// Accepts "SIGTERM", "TERM" and lowercase spellings, as kill(1) and Docker do.
    public static func read(_ json: JSONValue, at path: @autoclosure () -> JSONPath, _ issues: IssueCollector) -> StopSignal? {
        if case .string(let text) = json {
            let upper = text.uppercased()
            if let signal = StopSignal(rawValue: upper.hasPrefix("SIG") ? upper : "SIG" + upper) { return signal }
        }
        let names = allCases.map(\.rawValue)
        if case .string(let text) = json {
            issues.report(path(), "\"\(text)\" is not a valid stop signal\(Suggestion.hint(for: text, among: names)) (write one of: \(names.joined(separator: ", ")))")
        } else {
            issues.report(path(), "must be a signal name such as \"SIGTERM\", not \(json.kindDescription)")
        }
        return nil
    }
}
