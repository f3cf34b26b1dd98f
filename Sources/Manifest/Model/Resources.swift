/// What the scheduler sets aside for one instance on its node.
public struct ResourceReservation: ManifestObject, Hashable {
    public var cpu: Double?
    public var memory: ByteSize?

    public init(cpu: Double? = nil, memory: ByteSize? = nil) {
        self.cpu = cpu
        self.memory = memory
    }

    public static let spec = ObjectSpec(
        "ResourceReservation", doc: "What the scheduler reserves on a node for each instance, when less than the limit (the rest is used opportunistically, as Kubernetes' requests).",
        fields: [
            FieldSpec("cpu", Double.self, defaultDescription: "the cpu limit", example: 0.25, constraints: [.numberRange(above: 0, atMost: 1024)], doc: "Cores reserved."),
            FieldSpec("memory", ByteSize.self, defaultDescription: "the memory limit", example: "64Mi", doc: "Memory reserved."),
        ])

    public init?(reading reader: ObjectReader) {
        cpu = reader.read("cpu")
        memory = reader.read("memory")
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("cpu", cpu)
        writer.write("memory", memory)
    }
}

/// Limits enforced through the instance's cgroup, and what the scheduler reserves.
public struct Resources: ManifestObject, Hashable {
    /// Cores; 0.5 is half of one core's time (cgroup cpu quota over period).
    public var cpu: Double
    public var memory: ByteSize
    public var pids: Int
    public var reserve: ResourceReservation

    public static let minimumMemory = ByteSize.mebibytes(4)

    public init(cpu: Double = 1, memory: ByteSize = .mebibytes(256), pids: Int = 1024, reserve: ResourceReservation = ResourceReservation()) {
        self.cpu = cpu
        self.memory = memory
        self.pids = pids
        self.reserve = reserve
    }

    /// Cores the scheduler sets aside.
    public var reservedCPU: Double { reserve.cpu ?? cpu }
    /// Memory the scheduler sets aside.
    public var reservedMemory: ByteSize { reserve.memory ?? memory }

    public static let spec = ObjectSpec(
        "Resources", doc: "Limits enforced through each instance's cgroup. Unless `reserve` says less, the scheduler reserves the limits themselves on the node.",
        fields: [
            FieldSpec("cpu", Double.self, default: 1, example: 0.5, constraints: [.numberRange(above: 0, atMost: 1024)], doc: "CPU limit in cores, fractional (`0.5` is half a core's time), at most 3 decimals. Also sets the instance's CPU weight."),
            FieldSpec("memory", ByteSize.self, default: "256Mi", example: "128Mi", constraints: [.sizeAtLeast(4 << 20, text: "4Mi")], doc: "Memory limit; exceeding it gets the instance OOM-killed. Swap is off. At least `4Mi`."),
            FieldSpec("pids", Int.self, default: 1024, example: 256, constraints: [.integerRange(1...4_194_304)], doc: "Most processes and threads at once; a fork beyond it fails."),
            FieldSpec("reserve", ResourceReservation.self, default: [:], doc: "What the scheduler reserves, when less than the limits."),
        ])

    public init?(reading reader: ObjectReader) {
        cpu = reader.read("cpu") ?? 1
        memory = reader.read("memory") ?? .mebibytes(256)
        pids = reader.read("pids") ?? 1024
        reserve = reader.read("reserve") ?? ResourceReservation()
        if (cpu * 1000).rounded() != cpu * 1000, reader.isPresent("cpu") {
            reader.report("cpu", "\(cpu.compactText) is finer than the kernel can enforce; write at most 3 decimals, e.g. \((cpu * 1000).rounded() / 1000)")
        }
        let reservePath = reader.path.appending("reserve")
        if let reserved = reserve.cpu, reserved > cpu {
            reader.report(at: reservePath.appending("cpu"), "\(reserved.compactText) is more than the cpu limit \(cpu.compactText); reserve at most the limit")
        }
        if let reserved = reserve.memory, reserved > memory {
            reader.report(at: reservePath.appending("memory"), "\(reserved) is more than the memory limit \(memory); reserve at most the limit")
        }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("cpu", cpu)
        writer.write("memory", memory)
        writer.write("pids", pids)
        writer.write("reserve", reserve)
    }
}
