#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The bytes of one Raft entry: a command and the time its proposer stamped on it.
///
/// The time is part of the entry because replicas apply entries at different moments; reading
/// a clock while applying would make their states differ.
public struct ControllerEntry: Sendable, Hashable, Codable {
    /// Bumped when the encoding changes incompatibly; older agents refuse newer entries.
    /// 2: key-value transactions are written in binary (``KVTransactionEntryCoding``); entries
    /// of format 1 still read.
    public static let formatVersion = 2

    /// The encoding's version, written into every entry.
    public var formatVersion: Int
    /// When the proposer proposed it; what the state machine uses as "now".
    public var time: Timestamp
    /// The change itself.
    public var command: ControllerCommand

    /// An entry of the current format.
    public init(command: ControllerCommand, time: Timestamp) {
        self.formatVersion = Self.formatVersion
        self.time = time
        self.command = command
    }

    /// JSON with sorted keys, so that equal entries are equal bytes; key-value transactions in
    /// their binary form (``KVTransactionEntryCoding``).
    public func encoded() -> [UInt8] {
        if case .kvTransaction(let transaction) = command, formatVersion == Self.formatVersion {
            return KVTransactionEntryCoding.encode(transaction, time: time)
        }
        // Encoding these plain value types cannot fail: no floats that are not finite and no
        // custom encoders that throw, so a failure is a programming error.
        do {
            return Array(try ControllerCoding.encoder().encode(self))
        } catch {
            preconditionFailure("encoding a controller entry failed: \(error)")
        }
    }

    /// Reads an entry written by ``encoded()``.
    public static func decode(_ bytes: [UInt8]) throws(ControllerError) -> ControllerEntry {
        if bytes.first == KVTransactionEntryCoding.marker { return try KVTransactionEntryCoding.decode(bytes) }
        let entry: ControllerEntry
        do {
            entry = try JSONDecoder().decode(ControllerEntry.self, from: Data(bytes))
        } catch {
            throw .undecodableEntry("\(error)")
        }
        guard entry.formatVersion <= Self.formatVersion else {
            throw .undecodableEntry("format version \(entry.formatVersion) is newer than \(Self.formatVersion)")
        }
        return entry
    }
}

enum ControllerCoding {
    static func encoder() -> JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
