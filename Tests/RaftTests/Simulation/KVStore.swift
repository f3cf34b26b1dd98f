import Raft

/// A client command on the replicated key-value store, carried as an entry's data.
enum KVCommand: Equatable {
    case put(opID: UInt64, key: String, value: String)
    /// Compare-and-swap: set `value` if the key holds `expected` (nil: the key is absent).
    case cas(opID: UInt64, key: String, expected: String?, value: String)

    var opID: UInt64 {
        switch self {
        case .put(let opID, _, _), .cas(let opID, _, _, _): opID
        }
    }

    /// Space-separated text: easy to read in a failure trace. Keys and values never hold spaces.
    func encoded() -> [UInt8] {
        switch self {
        case .put(let opID, let key, let value):
            Array("P \(opID) \(key) \(value)".utf8)
        case .cas(let opID, let key, let expected, let value):
            Array("C \(opID) \(key) \(expected ?? "-") \(value)".utf8)
        }
    }

    init?(decoding data: [UInt8]) {
        let fields = String(decoding: data, as: UTF8.self).split(separator: " ").map(String.init)
        guard fields.count >= 4, let opID = UInt64(fields[1]) else { return nil }
        switch (fields[0], fields.count) {
        case ("P", 4): self = .put(opID: opID, key: fields[2], value: fields[3])
        case ("C", 5): self = .cas(opID: opID, key: fields[2], expected: fields[3] == "-" ? nil : fields[3], value: fields[4])
        default: return nil
        }
    }
}

/// The state machine every node applies committed entries to. `chain` hashes every applied
/// entry in order, so two nodes that applied different entries at any index disagree on it
/// from there on: that is how state machine safety is checked.
struct KVStore {
    private(set) var values: [String: String] = [:]
    private(set) var appliedIndex: UInt64 = 0
    private(set) var chain: UInt64 = 0xCBF2_9CE4_8422_2325

    init() {}

    /// Applies a committed entry; returns the command and its outcome (true unless a failed CAS).
    mutating func apply(_ entry: Entry) -> (command: KVCommand, succeeded: Bool)? {
        precondition(entry.index == appliedIndex + 1, "applying \(entry.index) after \(appliedIndex)")
        appliedIndex = entry.index
        chain = Self.hash(chain, entry)
        guard entry.kind == .normal, !entry.data.isEmpty else { return nil }
        guard let command = KVCommand(decoding: entry.data) else {
            preconditionFailure("undecodable command at \(entry.index)")
        }
        switch command {
        case .put(_, let key, let value):
            values[key] = value
            return (command, true)
        case .cas(_, let key, let expected, let value):
            guard values[key] == expected else { return (command, false) }
            values[key] = value
            return (command, true)
        }
    }

    /// FNV-1a over the previous hash, the entry's position and its contents.
    static func hash(_ previous: UInt64, _ entry: Entry) -> UInt64 {
        var hash = previous
        func mix(_ byte: UInt8) {
            hash = (hash ^ UInt64(byte)) &* 0x100_0000_01B3
        }
        for shift in stride(from: 0, to: 64, by: 8) {
            mix(UInt8(truncatingIfNeeded: entry.index >> UInt64(shift)))
            mix(UInt8(truncatingIfNeeded: entry.term >> UInt64(shift)))
        }
        mix(entry.kind.rawValue)
        for byte in entry.data { mix(byte) }
        return hash
    }

    /// `index chain` then `key=value` lines, keys sorted.
    func snapshotData() -> [UInt8] {
        var text = "\(appliedIndex) \(chain)\n"
        for key in values.keys.sorted() {
            text += "\(key)=\(values[key] ?? "")\n"
        }
        return Array(text.utf8)
    }

    init(snapshotData data: [UInt8]) {
        guard !data.isEmpty else { return }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        let header = lines[0].split(separator: " ")
        guard header.count == 2, let index = UInt64(header[0]), let chain = UInt64(header[1]) else {
            preconditionFailure("bad snapshot header")
        }
        appliedIndex = index
        self.chain = chain
        for line in lines.dropFirst() {
            let parts = line.split(separator: "=", maxSplits: 1)
            values[String(parts[0])] = parts.count > 1 ? String(parts[1]) : ""
        }
    }
}
