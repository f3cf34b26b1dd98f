/// Kernel interfaces a service has no business writing, made read-only, and ones it has no
/// business reading, masked: the defaults of runc and Docker (moby's oci/defaults.go,
/// `ReadonlyPaths` and `MaskedPaths`). Without them a service running as uid 0, even with no
/// capability, could write the host's /proc/sys and /proc/sysrq-trigger (their permission checks
/// are the file modes, which uid 0 passes). Public so that benchmarks give crun the same.
public enum KernelPaths {
    /// Bound onto themselves read-only.
    public static let readOnly = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
    /// Hidden: /dev/null over a file, an empty read-only tmpfs over a directory.
    public static let masked = [
        "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
        "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
        "/sys/devices/virtual/powercap",
    ]
}
