/// The binary form of the entries written most, key-value transactions. Decoding every applied
/// entry from JSON was 14% of a three-server cluster's CPU under key-value writes, and encoding
/// it (on the leader) another 4%. Other commands stay JSON: they are rare and read by people.
///
/// Layout, integers little-endian: the marker byte 0x01 (a JSON entry starts with `{`), the
/// format version (one byte), the time (Int64 milliseconds), then the comparisons and the
/// operations, each list a UInt16 count of parts. A part is a kind byte and a key, then a
/// value (comparison on the value, set) or a UInt64 (comparison on the modify index). Keys and
/// values are a UInt32 length and the bytes.
enum KVTransactionEntryCoding {
    static let marker: UInt8 = 0x01

    private enum CompareKind: UInt8 { case modifyIndex = 0, value = 1 }
    private enum OperationKind: UInt8 { case get = 0, set = 1, delete = 2, deleteTree = 3 }

    static func encode(_ transaction: KVTransaction, time: Timestamp) -> [UInt8] {
        var out: [UInt8] = [marker, UInt8(ControllerEntry.formatVersion)]
        append(UInt64(bitPattern: time.unixMilliseconds), to: &out)
        append(UInt16(transaction.compares.count), to: &out)
        for compare in transaction.compares {
            switch compare {
            case .modifyIndex(let key, let index):
                out.append(CompareKind.modifyIndex.rawValue)
                appendBytes(key.bytes, to: &out)
                append(index, to: &out)
            case .value(let key, let value):
                out.append(CompareKind.value.rawValue)
                appendBytes(key.bytes, to: &out)
                appendBytes(value, to: &out)
            }
        }
        append(UInt16(transaction.operations.count), to: &out)
        for operation in transaction.operations {
            switch operation {
            case .get(let key):
                out.append(OperationKind.get.rawValue)
                appendBytes(key.bytes, to: &out)
            case .set(let key, let value):
                out.append(OperationKind.set.rawValue)
                appendBytes(key.bytes, to: &out)
                appendBytes(value, to: &out)
            case .delete(let key):
                out.append(OperationKind.delete.rawValue)
                appendBytes(key.bytes, to: &out)
            case .deleteTree(let prefix):
                out.append(OperationKind.deleteTree.rawValue)
                appendBytes(prefix.bytes, to: &out)
            }
        }
        return out
    }

    /// Reads what ``encode(_:time:)`` wrote; `bytes` starts with ``marker``.
    static func decode(_ bytes: [UInt8]) throws(ControllerError) -> ControllerEntry {
        var reader = Reader(source: bytes, offset: 1)
        let version = Int(try reader.byte())
        guard version <= ControllerEntry.formatVersion else {
            throw .undecodableEntry("format version \(version) is newer than \(ControllerEntry.formatVersion)")
        }
        let time = Timestamp(unixMilliseconds: Int64(bitPattern: try reader.uint64()))
        var compares: [KVCompare] = []
        for _ in 0..<(try reader.uint16()) {
            let kind = try reader.byte()
            let key = try reader.key()
            switch CompareKind(rawValue: kind) {
            case .modifyIndex: compares.append(.modifyIndex(key, equals: try reader.uint64()))
            case .value: compares.append(.value(key, equals: try reader.bytes()))
            case nil: throw .undecodableEntry("unknown comparison kind \(kind) at byte \(reader.offset - 1)")
            }
        }
        var operations: [KVOperation] = []
        for _ in 0..<(try reader.uint16()) {
            let kind = try reader.byte()
            let key = try reader.key()
            switch OperationKind(rawValue: kind) {
            case .get: operations.append(.get(key))
            case .set: operations.append(.set(key, try reader.bytes()))
            case .delete: operations.append(.delete(key))
            case .deleteTree: operations.append(.deleteTree(prefix: key))
            case nil: throw .undecodableEntry("unknown operation kind \(kind)")
            }
        }
        guard reader.offset == bytes.count else {
            throw .undecodableEntry("\(bytes.count - reader.offset) bytes after a key-value transaction")
        }
        var entry = ControllerEntry(command: .kvTransaction(KVTransaction(compares: compares, operations: operations)), time: time)
        entry.formatVersion = version
        return entry
    }

    private static func append<Integer: FixedWidthInteger>(_ value: Integer, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) }
    }

    private static func appendBytes(_ bytes: [UInt8], to out: inout [UInt8]) {
        append(UInt32(bytes.count), to: &out)
        out.append(contentsOf: bytes)
    }

    private struct Reader {
        let source: [UInt8]
        var offset: Int

        mutating func byte() throws(ControllerError) -> UInt8 {
            try need(1)
            defer { offset += 1 }
            return source[offset]
        }

        mutating func uint16() throws(ControllerError) -> UInt16 { try integer() }
        mutating func uint64() throws(ControllerError) -> UInt64 { try integer() }

        mutating func bytes() throws(ControllerError) -> [UInt8] {
            let count = Int(try integer() as UInt32)
            try need(count)
            defer { offset += count }
            return Array(source[offset..<offset + count])
        }

        mutating func key() throws(ControllerError) -> KVKey {
            let start = offset
            let raw = try bytes()
            guard let text = String(validating: raw, as: UTF8.self) else {
                throw .undecodableEntry("the key at byte \(start) is not UTF-8")
            }
            return try KVKey(validating: text)
        }

        private mutating func integer<Integer: FixedWidthInteger>() throws(ControllerError) -> Integer {
            let size = MemoryLayout<Integer>.size
            try need(size)
            var value: Integer = 0
            for index in 0..<size { value |= Integer(source[offset + index]) << (8 * index) }
            offset += size
            return value
        }

        private func need(_ count: Int) throws(ControllerError) {
            guard count <= source.count - offset else {
                throw .undecodableEntry("a key-value transaction entry ends at byte \(source.count), inside a part at byte \(offset)")
            }
        }
    }
}
