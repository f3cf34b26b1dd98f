@testable import Raft

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

    /// Binary, with the codec the messages use: a kind byte, the operation id, then strings.
    func encoded() -> [UInt8] {
        var writer = ByteWriter(reservingCapacity: 32)
        switch self {
        case .put(let opID, let key, let value):
            writer.writeByte(1)
            writer.writeVarint(opID)
            writer.writeBytes(Array(key.utf8))
            writer.writeBytes(Array(value.utf8))
        case .cas(let opID, let key, let expected, let value):
            writer.writeByte(expected == nil ? 2 : 3)
            writer.writeVarint(opID)
            writer.writeBytes(Array(key.utf8))
            writer.writeBytes(Array(value.utf8))
            if let expected { writer.writeBytes(Array(expected.utf8)) }
        }
        return writer.bytes
    }

    init?(decoding data: [UInt8]) {
        var reader = ByteReader(data)
        guard let kind = try? reader.readByte(), let opID = try? reader.readVarint(),
              let key = try? reader.readBytes(), let value = try? reader.readBytes() else { return nil }
        let keyText = String(decoding: key, as: UTF8.self)
        let valueText = String(decoding: value, as: UTF8.self)
        switch kind {
        case 1: self = .put(opID: opID, key: keyText, value: valueText)
        case 2: self = .cas(opID: opID, key: keyText, expected: nil, value: valueText)
        case 3:
            guard let expected = try? reader.readBytes() else { return nil }
            self = .cas(opID: opID, key: keyText, expected: String(decoding: expected, as: UTF8.self), value: valueText)
        default: return nil
        }
    }
}

extension KVCommand: CustomStringConvertible {
    var description: String {
        switch self {
        case .put(let opID, let key, let value): "put#\(opID) \(key)=\(value)"
        case .cas(let opID, let key, let expected, let value): "cas#\(opID) \(key) \(expected ?? "-")->\(value)"
        }
    }
}

/// The state machine every node applies committed entries to. `chain` hashes every applied
/// entry in order, so two nodes that applied different entries at any index disagree on it
/// from there on: that is how state machine safety is checked.
struct KVStore {
    private(set) var values: [String: String] = [:]
    private(set) var appliedIndex: UInt64 = 0
    private(set) var chain: UInt64 = 0

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

    /// The previous hash combined with the entry's position and contents. `Hasher` is seeded
    /// per process, which is fine: hashes are only compared within one run.
    static func hash(_ previous: UInt64, _ entry: Entry) -> UInt64 {
        var hasher = Hasher()
        hasher.combine(previous)
        hasher.combine(entry.index)
        hasher.combine(entry.term)
        hasher.combine(entry.kind)
        entry.data.withUnsafeBytes { hasher.combine(bytes: $0) }
        return UInt64(bitPattern: Int64(hasher.finalize()))
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
