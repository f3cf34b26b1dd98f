import Manifest

/// Gives an instance its port numbers on a node: static ports at their number, dynamic ports
/// from the node's range, never one the node already uses.
enum PortAllocator {
    /// Every port of the service in manifest order, or nil when the range has too few free
    /// numbers. The search starts at a point derived from `key` (the instance's slot and
    /// revision) rather than at the bottom of the range: Nomad picks dynamic ports at random
    /// for the same reason, so that a port just freed by a stopping instance, perhaps still in
    /// TIME_WAIT or held by a process that has not yet exited, is not handed out again at once.
    /// A hash keeps the choice a pure function of the input.
    static func assign(_ ports: [Port], key: String, range: PortRange, usage: NodeUsage) -> [AssignedPort]? {
        var taken = Set(ports.compactMap(\.number))
        var assigned: [AssignedPort] = []
        assigned.reserveCapacity(ports.count)
        let count = range.count
        for port in ports {
            if let number = port.number {
                assigned.append(AssignedPort(name: port.name, number: number, protocol: port.protocol))
                continue
            }
            guard count > 0 else { return nil }
            let start = Int(fnv1a(key + "/" + port.name) % UInt64(count))
            var found: Int?
            for step in 0..<count {
                let candidate = range.lowest + (start + step) % count
                if !taken.contains(candidate), !usage.isNumberInUse(candidate) {
                    found = candidate
                    break
                }
            }
            guard let number = found else { return nil }
            taken.insert(number)
            assigned.append(AssignedPort(name: port.name, number: number, protocol: port.protocol))
        }
        return assigned
    }

    /// FNV-1a, 64 bits: stable across processes and releases, unlike `Hasher`, which is seeded
    /// per process.
    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}
