import Foundation
import Supervisor

/// An OCI bundle equivalent to the benchmark's launch spec: the same rootfs and command, pid,
/// mount, uts and ipc namespaces, the same /proc (with the same read-only and masked paths),
/// /dev, /dev/pts, /dev/shm and read-only /sys,
/// no capabilities, no_new_privs, the same seccomp deny-list, the same memory, cpu and pids
/// limits.
struct CrunBundle {
    let directory: String

    init(rootfs: String, limits: CgroupLimits, cgroupParent: String) throws {
        directory = NSTemporaryDirectory() + "flotilla-crun-bundle-" + UUID().uuidString.prefix(8)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let denied = SeccompPolicy.defaultDeniedCalls(keeping: [])
        var syscalls: [[String: Any]] = [["names": denied, "action": "SCMP_ACT_ERRNO", "errnoRet": 1]]
        for flag in SeccompPolicy.namespaceCloneFlags {
            syscalls.append([
                "names": ["clone"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1,
                "args": [["index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"]],
            ])
        }
        syscalls.append(["names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38])
        let memory = limits.memoryMaxBytes ?? 0
        let config: [String: Any] = [
            "ociVersion": "1.0.0",
            "process": [
                "terminal": false, "user": ["uid": 0, "gid": 0], "args": ["/bin/true"],
                "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"],
                "cwd": "/", "noNewPrivileges": true,
                "capabilities": ["bounding": [], "effective": [], "inheritable": [], "permitted": [], "ambient": []],
            ],
            "root": ["path": rootfs, "readonly": false],
            "hostname": "bench",
            "mounts": [
                ["destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]],
                ["destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                 "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]],
                ["destination": "/dev/pts", "type": "devpts", "source": "devpts",
                 "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]],
                ["destination": "/dev/shm", "type": "tmpfs", "source": "shm",
                 "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]],
                ["destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]],
            ],
            "linux": [
                "namespaces": [["type": "pid"], ["type": "mount"], ["type": "uts"], ["type": "ipc"]],
                "cgroupsPath": "/\(cgroupParent)/bench",
                // What Flotilla does too (and Docker asks of runc): the same work on both sides.
                "maskedPaths": KernelPaths.masked,
                "readonlyPaths": KernelPaths.readOnly,
                "resources": [
                    "memory": ["limit": memory, "swap": memory],
                    "cpu": ["quota": (limits.cpuMaxMicroCores ?? 1_000_000) / 10, "period": 100_000,
                            "shares": 1024],
                    "pids": ["limit": limits.pidsMax ?? 64],
                ],
                "seccomp": ["defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                            "syscalls": syscalls],
            ],
        ]
        let data = try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: directory + "/config.json"))
    }

    func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
