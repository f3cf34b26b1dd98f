extension LaunchSpec {
    /// Every problem with the spec, each naming the field (empty when the spec can be launched).
    /// Checked before anything is created, so an invalid spec leaves nothing behind.
    public func problems() -> [String] {
        var problems: [String] = []
        let idCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        if instanceID.isEmpty || instanceID.count > 128 || instanceID == "." || instanceID == ".."
            || !instanceID.allSatisfy(idCharacters.contains)
        {
            problems.append("instanceID: \"\(instanceID)\" must be 1–128 of letters, digits, '.', '_', '-'")
        }
        if command.isEmpty || command[0].isEmpty { problems.append("command: must name a program") }
        for (index, argument) in command.enumerated() where argument.utf8.contains(0) {
            problems.append("command[\(index)]: contains a NUL byte")
        }
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) {
            if key.isEmpty || key.contains("=") || key.utf8.contains(0) || value.utf8.contains(0) {
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
}
