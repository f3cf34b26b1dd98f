/// What the scheduler sets aside for one instance on its node.
public struct ResourceReservation: ManifestObject, Hashable {
    public var cpu: Double?
    public var memory: ByteSize?

    public init(cpu: Double? = nil, memory: ByteSize? = nil) {
        self.cpu = cpu
        self.memory = memory
    }

    public static let spec = ObjectSpec(
        "ResourceReservation", doc: "What the scheduler reserves on a node for each instance, at most the limits; the rest of a limit is used opportunistically, as with Kubernetes' requests.",
        fields: [
            FieldSpec("cpu", Double.self, defaultDescription: "`resources.cpu` when written, else 0.1", example: 0.25, constraints: [.numberRange(above: 0, atMost: 1024)], doc: "Cores reserved. Left out: the cpu limit when `resources.cpu` is written, else 0.1."),
            FieldSpec("memory", ByteSize.self, defaultDescription: "`resources.memory` when written, else `64Mi`", example: "64Mi", doc: "Memory reserved. Left out: the memory limit when `resources.memory` is written, else `64Mi`."),
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
///
/// The reservation follows Kubernetes' rule for requests: a limit that is written is also
/// reserved, unless `reserve` says less. A limit left out keeps its default, but reserves only
/// ``defaultReservedCPU`` and ``defaultReservedMemory``, as Nomad reserves 100 MHz for a task
/// that names no resources: twenty replicas of a `sleep` fit on a two-core node.
public struct Resources: ManifestObject, Hashable {
    /// Cores; 0.5 is half of one core's time (cgroup cpu quota over period).
    public var cpu: Double
    public var memory: ByteSize
    public var pids: Int
    /// What the scheduler reserves; a nil member means the limit itself.
    public var reserve: ResourceReservation

    public static let minimumMemory = ByteSize.mebibytes(4)
    /// Cores reserved for a service that leaves its cpu limit out.
    public static let defaultReservedCPU = 0.1
    /// Memory reserved for a service that leaves its memory limit out.
    public static let defaultReservedMemory = ByteSize.mebibytes(64)

    /// Limits as a manifest writes them: a limit given (not nil) is reserved unless `reserve`
    /// says less; one left out is 1 core or 256Mi, with the modest default reservation.
    public init(cpu: Double? = nil, memory: ByteSize? = nil, pids: Int = 1024, reserve: ResourceReservation = ResourceReservation()) {
        self.cpu = cpu ?? 1
        self.memory = memory ?? .mebibytes(256)
        self.pids = pids
        // Resolved here, so that the canonical JSON (every default written out) reads back to
        // the same reservation once the limits appear in it.
        self.reserve = ResourceReservation(
            cpu: reserve.cpu ?? (cpu == nil ? Self.defaultReservedCPU : nil),
            memory: reserve.memory ?? (memory == nil ? Self.defaultReservedMemory : nil))
    }

    /// Cores the scheduler sets aside.
    public var reservedCPU: Double { reserve.cpu ?? cpu }
    /// Memory the scheduler sets aside.
    public var reservedMemory: ByteSize { reserve.memory ?? memory }

    public static let spec = ObjectSpec(
        "Resources",
        doc: "Limits enforced through each instance's cgroup, and what the scheduler reserves on the node. A limit that is written is also reserved, unless `reserve` says less (as Kubernetes' requests default to written limits). A limit left out reserves only 0.1 core and 64Mi (as Nomad's default of 100 MHz), so a service without `resources` takes little room on a node yet may use up to 1 core and 256Mi.",
        fields: [
            FieldSpec("cpu", Double.self, default: 1, example: 0.5, constraints: [.numberRange(above: 0, atMost: 1024)], doc: "CPU limit in cores, fractional (`0.5` is half a core's time), at most 3 decimals. Also sets the instance's CPU weight."),
            FieldSpec("memory", ByteSize.self, default: "256Mi", example: "128Mi", constraints: [.sizeAtLeast(4 << 20, text: "4Mi")], doc: "Memory limit; exceeding it gets the instance OOM-killed. Swap is off. At least `4Mi`."),
            FieldSpec("pids", Int.self, default: 1024, example: 256, constraints: [.integerRange(1...4_194_304)], doc: "Most processes and threads at once; a fork beyond it fails."),
            FieldSpec("reserve", ResourceReservation.self, default: [:], doc: "What the scheduler reserves, when not the limits (or the modest defaults of limits left out)."),
        ])

    public init?(reading reader: ObjectReader) {
        let cpu = reader.read("cpu", as: Double.self)
        let memory = reader.read("memory", as: ByteSize.self)
        let pids = reader.read("pids", as: Int.self)
        let reserve = reader.read("reserve", as: ResourceReservation.self)
        self.init(
            cpu: reader.isPresent("cpu") ? cpu ?? 1 : nil, memory: reader.isPresent("memory") ? memory ?? .mebibytes(256) : nil,
            pids: pids ?? 1024, reserve: reserve ?? ResourceReservation())
        if (self.cpu * 1000).rounded() != self.cpu * 1000, reader.isPresent("cpu"), !reader.isInvalid("cpu") {
            reader.report("cpu", "\(self.cpu.compactText) is finer than the kernel can enforce; write at most 3 decimals, e.g. \((self.cpu * 1000).rounded() / 1000)")
        }
        // A broken limit or reservation is reported where it is broken, not compared.
        let reservePath = reader.path.appending("reserve")
        if let reserved = reserve?.cpu, reserved > self.cpu, !reader.isInvalid("cpu"), !reader.hasProblem(at: reservePath.appending("cpu")) {
            reader.report(at: reservePath.appending("cpu"), "\(reserved.compactText) is more than the cpu limit \(self.cpu.compactText); reserve at most the limit")
        }
        if let reserved = reserve?.memory, reserved > self.memory, !reader.isInvalid("memory"), !reader.hasProblem(at: reservePath.appending("memory")) {
            reader.report(at: reservePath.appending("memory"), "\(reserved) is more than the memory limit \(self.memory); reserve at most the limit")
        }
    }

    public func write(to writer: inout ObjectWriter) {
        writer.write("cpu", cpu)
        writer.write("memory", memory)
        writer.write("pids", pids)
        writer.write("reserve", reserve)
    }
}
