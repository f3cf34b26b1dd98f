/// Limits on an instance's cgroup. nil leaves the kernel's default (no limit, default weight).
public struct CgroupLimits: Sendable, Hashable {
    /// Memory ceiling; swap is turned off for the cgroup whenever this is set.
    public var memoryMaxBytes: UInt64?
    /// CPU time per period, in millionths of a core (1_500_000 = one and a half cores).
    public var cpuMaxMicroCores: UInt64?
    /// Relative CPU weight on cgroup v2's scale: 1…10000, default 100.
    public var cpuWeight: UInt64?
    /// Most processes and threads at once.
    public var pidsMax: UInt64?

    /// Limits; all optional.
    public init(memoryMaxBytes: UInt64? = nil, cpuMaxMicroCores: UInt64? = nil, cpuWeight: UInt64? = nil,
                pidsMax: UInt64? = nil)
    {
        self.memoryMaxBytes = memoryMaxBytes
        self.cpuMaxMicroCores = cpuMaxMicroCores
        self.cpuWeight = cpuWeight
        self.pidsMax = pidsMax
    }

    /// The CFS period the quota is expressed in: the kernel's default, 100 ms; or its longest,
    /// 1 s, for a limit under 0.01 core, whose quota per 100 ms would be under the kernel's 1 ms
    /// minimum (writing it fails with EINVAL, and so would every launch).
    var cpuPeriodMicroseconds: UInt64? {
        cpuMaxMicroCores.map { $0 < 10_000 ? 1_000_000 : 100_000 }
    }

    /// Quota per period for `cpuMaxMicroCores`.
    var cpuQuotaMicroseconds: UInt64? {
        guard let cpuMaxMicroCores, let period = cpuPeriodMicroseconds else { return nil }
        return cpuMaxMicroCores * period / 1_000_000
    }

    /// cpu.shares for `cpuWeight`, as systemd maps CPUWeight to CPUShares (weight × 1024 / 100,
    /// so the defaults 100 and 1024 meet), clamped to the kernel's 2…262144.
    var cpuShares: UInt64? {
        cpuWeight.map { min(max($0 * 1024 / 100, 2), 262_144) }
    }

    /// The controllers these limits need.
    var controllers: Set<String> {
        var needed = Set<String>()
        if memoryMaxBytes != nil { needed.insert("memory") }
        if cpuMaxMicroCores != nil || cpuWeight != nil { needed.insert("cpu") }
        if pidsMax != nil { needed.insert("pids") }
        return needed
    }

    /// The writes for cgroup v2, in the formats of Documentation/admin-guide/cgroup-v2.rst.
    func unifiedWrites(swapFileExists: Bool) -> [CgroupFileWrite] {
        var writes: [CgroupFileWrite] = []
        if let memoryMaxBytes {
            writes.append(CgroupFileWrite(controller: "memory", file: "memory.max", value: "\(memoryMaxBytes)"))
            if swapFileExists {
                writes.append(CgroupFileWrite(controller: "memory", file: "memory.swap.max", value: "0"))
            }
        }
        if let quota = cpuQuotaMicroseconds, let period = cpuPeriodMicroseconds {
            writes.append(CgroupFileWrite(controller: "cpu", file: "cpu.max", value: "\(quota) \(period)"))
        }
        if let cpuWeight {
            writes.append(CgroupFileWrite(controller: "cpu", file: "cpu.weight", value: "\(cpuWeight)"))
        }
        if let pidsMax {
            writes.append(CgroupFileWrite(controller: "pids", file: "pids.max", value: "\(pidsMax)"))
        }
        return writes
    }

    /// The writes for cgroup v1 (cgroup-v1/memory.rst, scheduler/sched-bwc.rst, cgroup-v1/pids.rst).
    /// memsw is memory plus swap: equal to the memory limit, no swap is possible. It must be
    /// written after memory.limit_in_bytes, which may never exceed it. The period is written
    /// before the quota, which the kernel checks against it.
    func legacyWrites(memswFileExists: Bool) -> [CgroupFileWrite] {
        var writes: [CgroupFileWrite] = []
        if let memoryMaxBytes {
            writes.append(CgroupFileWrite(controller: "memory", file: "memory.limit_in_bytes", value: "\(memoryMaxBytes)"))
            if memswFileExists {
                writes.append(
                    CgroupFileWrite(controller: "memory", file: "memory.memsw.limit_in_bytes", value: "\(memoryMaxBytes)"))
            }
        }
        if let quota = cpuQuotaMicroseconds, let period = cpuPeriodMicroseconds {
            writes.append(CgroupFileWrite(controller: "cpu", file: "cpu.cfs_period_us", value: "\(period)"))
            writes.append(CgroupFileWrite(controller: "cpu", file: "cpu.cfs_quota_us", value: "\(quota)"))
        }
        if let shares = cpuShares {
            writes.append(CgroupFileWrite(controller: "cpu", file: "cpu.shares", value: "\(shares)"))
        }
        if let pidsMax {
            writes.append(CgroupFileWrite(controller: "pids", file: "pids.max", value: "\(pidsMax)"))
        }
        return writes
    }
}

/// One value written to one cgroup file of a controller.
struct CgroupFileWrite: Sendable, Hashable {
    var controller: String
    var file: String
    var value: String
}

/// What an instance's cgroup has used.
public struct CgroupStats: Sendable, Hashable {
    /// Memory charged now.
    public var memoryCurrentBytes: UInt64?
    /// The most memory ever charged.
    public var memoryPeakBytes: UInt64?
    /// CPU time used, user and system together.
    public var cpuUsage: Duration?
    /// Processes and threads now.
    public var pidsCurrent: UInt64?
    /// How many processes the kernel's OOM killer killed in the cgroup.
    public var oomKillCount: UInt64
}
