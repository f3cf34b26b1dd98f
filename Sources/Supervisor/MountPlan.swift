/// The filesystem steps of a launch, in order, as the child performs them (`struct fl_mount`).
/// The standard set follows runc's default spec (libcontainer/specconv/example.go): /proc,
/// a tmpfs /dev with null, zero, full, random, urandom and tty, /dev/pts, /dev/shm, and /sys
/// read-only.
struct MountPlan: Sendable, Hashable {
    /// One step.
    struct Step: Sendable, Hashable {
        enum Kind: Sendable, Hashable {
            /// A fresh filesystem.
            case filesystem(source: String, type: String, flags: UInt64, data: String?)
            /// A host path cloned before pivot_root and attached at the target.
            case bind(source: String, recursive: Bool, attributes: UInt64, targetIsFile: Bool)
            /// A character device node.
            case device(major: UInt32, minor: UInt32)
            /// A symbolic link pointing at `destination`.
            case symlink(destination: String)
            /// The existing path made read-only (skipped when absent).
            case readOnly
            /// The existing path hidden (skipped when absent).
            case mask
        }

        var kind: Kind
        var target: String
    }

    var steps: [Step]

    // mount(2) flags and mount_setattr(2) attributes.
    static let readOnly: UInt64 = 0x1, noSetuid: UInt64 = 0x2, noDevices: UInt64 = 0x4, noExec: UInt64 = 0x8
    static let strictAccessTime: UInt64 = 1 << 24

    /// The devices every service gets, with their numbers (Documentation/admin-guide/devices.txt).
    static let devices: [(name: String, major: UInt32, minor: UInt32)] = [
        ("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8), ("urandom", 1, 9), ("tty", 5, 0),
    ]

    /// The plan for a spec. `isDirectory` says whether a bind source is a directory (the parent
    /// stats it; the child creates a directory or a file to mount on accordingly).
    init(spec: LaunchSpec, isDirectory: (String) -> Bool) {
        var steps: [Step] = []
        let userNamespace = spec.namespaces.contains(.user)
        switch spec.root {
        case .host:
            // The host's /proc shows the host's pid namespace; a service in its own needs its own.
            if spec.namespaces.contains(.pid) {
                steps.append(Step(kind: .filesystem(source: "proc", type: "proc",
                                                    flags: Self.noSetuid | Self.noDevices | Self.noExec, data: nil),
                                  target: "/proc"))
            }
        case .directory:
            steps.append(Step(kind: .filesystem(source: "proc", type: "proc",
                                                flags: Self.noSetuid | Self.noDevices | Self.noExec, data: nil),
                              target: "/proc"))
            steps.append(Step(kind: .filesystem(source: "tmpfs", type: "tmpfs",
                                                flags: Self.noSetuid | Self.strictAccessTime, data: "mode=755,size=65536k"),
                              target: "/dev"))
            for device in Self.devices {
                // mknod is refused in a user namespace: bind the host's node there, as runc does.
                let kind: Step.Kind = userNamespace
                    ? .bind(source: "/dev/" + device.name, recursive: false, attributes: 0, targetIsFile: true)
                    : .device(major: device.major, minor: device.minor)
                steps.append(Step(kind: kind, target: "/dev/" + device.name))
            }
            steps.append(Step(kind: .filesystem(source: "devpts", type: "devpts", flags: Self.noSetuid | Self.noExec,
                                                data: "newinstance,ptmxmode=0666,mode=0620"),
                              target: "/dev/pts"))
            steps.append(Step(kind: .filesystem(source: "shm", type: "tmpfs",
                                                flags: Self.noSetuid | Self.noDevices | Self.noExec,
                                                data: "mode=1777,size=65536k"),
                              target: "/dev/shm"))
            for (link, destination) in [("ptmx", "pts/ptmx"), ("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                                        ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")]
            {
                steps.append(Step(kind: .symlink(destination: destination), target: "/dev/" + link))
            }
            // sysfs may only be mounted by the owner of the network namespace: a user namespace
            // without its own network namespace gets the host's /sys bound read-only instead.
            let sysKind: Step.Kind = userNamespace && !spec.namespaces.contains(.network)
                ? .bind(source: "/sys", recursive: true,
                        attributes: Self.readOnly | Self.noSetuid | Self.noDevices | Self.noExec, targetIsFile: false)
                : .filesystem(source: "sysfs", type: "sysfs",
                              flags: Self.readOnly | Self.noSetuid | Self.noDevices | Self.noExec, data: nil)
            steps.append(Step(kind: sysKind, target: "/sys"))
        }
        // Over the service's own /proc (and /sys): with the host's root and no pid namespace
        // /proc is the host's own, which the service shares by choice.
        if case .directory = spec.root {
            steps += KernelPaths.readOnly.map { Step(kind: .readOnly, target: $0) }
            steps += KernelPaths.masked.map { Step(kind: .mask, target: $0) }
        } else if spec.namespaces.contains(.pid) {
            steps += KernelPaths.readOnly.map { Step(kind: .readOnly, target: $0) }
            steps += KernelPaths.masked.filter { $0.hasPrefix("/proc/") }.map { Step(kind: .mask, target: $0) }
        }
        for mount in spec.mounts {
            switch mount.kind {
            case .bind(let source, let recursive):
                steps.append(Step(kind: .bind(source: source, recursive: recursive,
                                              attributes: mount.readOnly ? Self.readOnly : 0,
                                              targetIsFile: !isDirectory(source)),
                                  target: mount.target))
            case .tmpfs(let sizeBytes, let mode):
                var data = "mode=" + String(mode, radix: 8)
                if let sizeBytes { data += ",size=\(sizeBytes)" }
                steps.append(Step(kind: .filesystem(source: "tmpfs", type: "tmpfs",
                                                    flags: Self.noSetuid | Self.noDevices | (mount.readOnly ? Self.readOnly : 0),
                                                    data: data),
                                  target: mount.target))
            }
        }
        self.steps = steps
    }
}
