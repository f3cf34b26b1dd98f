import Controller

#if canImport(Glibc)
import Glibc
#endif

/// What this node reports about itself when it registers: attributes read from the host
/// (uname, /proc/meminfo, online CPUs) and what it offers to the scheduler.
public enum NodeIdentity {
    /// The registration for this host.
    public static func registration(name: String, address: String, labels: [String: String], ports: PortRange,
                                    reservedMemoryBytes: Int64 = 256 << 20) -> NodeRegistration {
        var names = utsname()
        uname(&names)
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let cpus = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let memory = memoryTotalBytes() ?? Int64(sysconf(Int32(_SC_PHYS_PAGES))) * Int64(sysconf(Int32(_SC_PAGESIZE)))
        let attributes = NodeAttributes(os: text(names.sysname).lowercased(), arch: text(names.machine), kernel: text(names.release), cpus: cpus, memoryBytes: memory)
        // The agent itself and the system need memory too; what is left is offered.
        let capacity = NodeCapacity(cpuMillicores: cpus * 1000, memoryBytes: max(memory - reservedMemoryBytes, memory / 2))
        return NodeRegistration(name: name, address: address, labels: labels, attributes: attributes, capacity: capacity, dynamicPorts: ports)
    }

    /// MemTotal from /proc/meminfo.
    static func memoryTotalBytes() -> Int64? {
        guard let file = fopen("/proc/meminfo", "r") else { return nil }
        defer { fclose(file) }
        var line = [CChar](repeating: 0, count: 256)
        while fgets(&line, Int32(line.count), file) != nil {
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            guard text.hasPrefix("MemTotal:") else { continue }
            let kibibytes = text.dropFirst("MemTotal:".count).split(separator: " ").first.flatMap { Int64($0) }
            return kibibytes.map { $0 * 1024 }
        }
        return nil
    }

    /// The host's name, the default node name.
    public static func hostname() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        gethostname(&buffer, buffer.count)
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "node" : name
    }
}
