/// One key's value and the log indexes that made and last changed it (Consul's CreateIndex
/// and ModifyIndex): what check-and-set and blocking queries compare against.
public struct KVEntry: Sendable, Hashable {
    /// The longest value, in bytes.
    public static let maxValueBytes = 512 * 1024

    public var key: KVKey
    public var value: [UInt8]
    /// The index of the entry that created the key (since it last did not exist).
    public var createIndex: UInt64
    /// The index of the entry that last set it.
    public var modifyIndex: UInt64

    public init(key: KVKey, value: [UInt8], createIndex: UInt64, modifyIndex: UInt64) {
        self.key = key
        self.value = value
        self.createIndex = createIndex
        self.modifyIndex = modifyIndex
    }
}
