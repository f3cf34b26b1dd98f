/// A key of the replicated key-value store: a `/`-separated path, compared and ordered as its
/// UTF-8 bytes (as Consul and etcd treat keys), so that every key under a prefix sits together
/// in order and two spellings that Unicode calls equal stay two keys.
public struct KVKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The longest key, in bytes.
    public static let maxBytes = 512

    /// The key's UTF-8 bytes.
    public let bytes: [UInt8]

    /// The key as written.
    public var description: String { String(decoding: bytes, as: UTF8.self) }

    /// `text` as a key, or why it cannot be one: empty, over 512 bytes, a `.` or `..` segment,
    /// an empty segment (`a//b`, or a leading `/`), or a control character. A trailing `/` is
    /// allowed: `config/` names a folder, as in Consul.
    public init(validating text: String) throws(ControllerError) {
        let bytes = Array(text.utf8)
        func refuse(_ reason: String) -> ControllerError { .invalidKey(key: text, reason: reason) }
        guard !bytes.isEmpty else { throw refuse("a key cannot be empty") }
        guard bytes.count <= Self.maxBytes else {
            throw refuse("the key is \(bytes.count) bytes; keys are at most \(Self.maxBytes)")
        }
        if let control = text.unicodeScalars.first(where: { $0.value < 0x20 || $0.value == 0x7F }) {
            throw refuse("the key holds the control character U+\(String(control.value, radix: 16, uppercase: true)); use printable characters")
        }
        let segments = text.split(separator: "/", omittingEmptySubsequences: false)
        for (position, segment) in segments.enumerated() {
            let isTrailing = position == segments.count - 1 && position > 0
            if segment.isEmpty && !isTrailing {
                throw refuse(position == 0 ? "a key does not start with /" : "a key has no empty segment (//)")
            }
            if segment == "." || segment == ".." {
                throw refuse("a key has no \(segment) segment; write the path it stands for")
            }
        }
        self.bytes = bytes
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
