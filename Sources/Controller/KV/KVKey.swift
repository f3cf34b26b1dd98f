import Manifest

/// A key of the replicated key-value store: a `/`-separated path, compared and ordered as its
/// UTF-8 bytes (as Consul and etcd treat keys), so that every key under a prefix sits together
/// in order and two spellings that Unicode calls equal stay two keys.
public struct KVKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The longest key, in bytes.
    public static let maxBytes = KeyRules.maxBytes

    /// The key's UTF-8 bytes.
    public let bytes: [UInt8]

    /// The key as written.
    public var description: String { String(decoding: bytes, as: UTF8.self) }

    /// `text` as a key, or why it cannot be one: empty, over 512 bytes, a `.` or `..` segment,
    /// an empty segment (`a//b`, or a leading `/`), or a control character. A trailing `/` is
    /// allowed: `config/` names a folder, as in Consul.
    public init(validating text: String) throws(ControllerError) {
        if let problem = KeyRules.problem(text) { throw .invalidKey(key: text, reason: problem) }
        bytes = Array(text.utf8)
    }

    /// A key known valid (read back from the log or a snapshot, which only hold valid ones).
    init(trusted bytes: [UInt8]) { self.bytes = bytes }

    /// Whether this key starts with `prefix` (bytewise; every key starts with the empty prefix).
    public func hasPrefix(_ prefix: [UInt8]) -> Bool {
        bytes.count >= prefix.count && bytes[..<prefix.count].elementsEqual(prefix)
    }

    public static func < (lhs: KVKey, rhs: KVKey) -> Bool {
        lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
    }
}
