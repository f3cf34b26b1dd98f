extension LaunchSpec {
    /// Every problem with the spec, each naming the field (empty when the spec can be launched).
    /// Checked before anything is created, so an invalid spec leaves nothing behind.
    public func problems() -> [String] {
        var problems: [String] = []
        // Checked on bytes: this runs on every launch, and a Set of Characters is built and
        // hashed grapheme by grapheme (tens of microseconds of a start budget of about two ms).
        let id = instanceID.utf8
        if id.isEmpty || id.count > 128 || instanceID == "." || instanceID == ".."
            || !id.allSatisfy(Self.isIDByte)
        {
            problems.append("instanceID: \"\(instanceID)\" must be 1–128 of letters, digits, '.', '_', '-'")
        }
        if command.isEmpty || command[0].isEmpty { problems.append("command: must name a program") }
        for (index, argument) in command.enumerated() where argument.utf8.contains(0) {
            problems.append("command[\(index)]: contains a NUL byte")
        }
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) {
            if key.isEmpty || key.utf8.contains(UInt8(ascii: "=")) || key.utf8.contains(0) || value.utf8.contains(0) {
                problems.append("environment.\(key): names may not be empty or hold '=' or NUL")
            }
        }
        if !workingDirectory.hasPrefix("/") { problems.append("workingDirectory: must be an absolute path") }
        if case .directory(let path) = root, !path.hasPrefix("/") {
            problems.append("root: \"\(path)\" must be an absolute path")
        }
        if readOnlyRoot, root == .host { problems.append("readOnlyRoot: needs a root directory, not the host's") }
        for (index, mount) in mounts.enumerated() {
            if !mount.target.hasPrefix("/") || mount.target == "/" {
                problems.append("mounts[\(index)].target: \"\(mount.target)\" must be an absolute path below /")
            }
            if case .bind(let source, _) = mount.kind, !source.hasPrefix("/") {
                problems.append("mounts[\(index)].source: \"\(source)\" must be an absolute path")
            }
        }
        if namespaces.contains(.user) != (idMapping != nil) {
            problems.append("idMapping: required exactly when the user namespace is requested")
        }
        if let hostname {
            if !namespaces.contains(.uts) { problems.append("hostname: needs the uts namespace") }
            if hostname.isEmpty || hostname.utf8.count > 64 { problems.append("hostname: must be 1–64 bytes") }
        }
        if let weight = cgroupLimits.cpuWeight, !(1...10_000).contains(weight) {
            problems.append("cgroupLimits.cpuWeight: \(weight) is outside 1…10000")
        }
        if cgroupLimits.memoryMaxBytes == 0 { problems.append("cgroupLimits.memoryMaxBytes: must be above 0") }
        if cgroupLimits.cpuMaxMicroCores == 0 { problems.append("cgroupLimits.cpuMaxMicroCores: must be above 0") }
        if startTimeout <= .zero { problems.append("startTimeout: must be positive") }
        return problems
    }

    /// Letters, digits, '.', '_' and '-' (ASCII).
    private static func isIDByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}
