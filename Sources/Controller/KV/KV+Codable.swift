#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The log's and the snapshot's format for the store, written out by hand like the commands':
/// keys as strings, values as base64 (a byte array would be written as a list of numbers,
/// four times the size).
enum KVCoding {
    static func key(_ text: String, in path: [any CodingKey]) throws -> KVKey {
        do {
            return try KVKey(validating: text)
        } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: error.message))
        }
    }

    static func value(_ text: String, in path: [any CodingKey]) throws -> [UInt8] {
        guard let data = Data(base64Encoded: text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: path, debugDescription: "a value is not base64"))
        }
        return Array(data)
    }

    static func text(_ value: [UInt8]) -> String { Data(value).base64EncodedString() }
}

extension KVTransaction: Codable {
    private enum CodingKeys: String, CodingKey { case compares, operations }
    private enum PartKeys: String, CodingKey { case op, key, value, modifyIndex }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var compares: [KVCompare] = []
        var list = try container.nestedUnkeyedContainer(forKey: .compares)
        while !list.isAtEnd {
            let part = try list.nestedContainer(keyedBy: PartKeys.self)
            let key = try KVCoding.key(try part.decode(String.self, forKey: .key), in: part.codingPath)
            if let index = try part.decodeIfPresent(UInt64.self, forKey: .modifyIndex) {
                compares.append(.modifyIndex(key, equals: index))
            } else {
                compares.append(.value(key, equals: try KVCoding.value(try part.decode(String.self, forKey: .value), in: part.codingPath)))
            }
        }
        var operations: [KVOperation] = []
        list = try container.nestedUnkeyedContainer(forKey: .operations)
        while !list.isAtEnd {
            let part = try list.nestedContainer(keyedBy: PartKeys.self)
            let key = try KVCoding.key(try part.decode(String.self, forKey: .key), in: part.codingPath)
            switch try part.decode(String.self, forKey: .op) {
            case "get": operations.append(.get(key))
            case "set": operations.append(.set(key, try KVCoding.value(try part.decode(String.self, forKey: .value), in: part.codingPath)))
            case "delete": operations.append(.delete(key))
            case "deleteTree": operations.append(.deleteTree(prefix: key))
            case let other:
                throw DecodingError.dataCorruptedError(forKey: .op, in: part, debugDescription: "unknown operation \(other)")
            }
        }
        self.init(compares: compares, operations: operations)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        var list = container.nestedUnkeyedContainer(forKey: .compares)
        for compare in compares {
            var part = list.nestedContainer(keyedBy: PartKeys.self)
            try part.encode(compare.key.description, forKey: .key)
            switch compare {
            case .modifyIndex(_, let index): try part.encode(index, forKey: .modifyIndex)
            case .value(_, let value): try part.encode(KVCoding.text(value), forKey: .value)
            }
        }
        list = container.nestedUnkeyedContainer(forKey: .operations)
        for operation in operations {
            var part = list.nestedContainer(keyedBy: PartKeys.self)
            switch operation {
            case .get(let key):
                try part.encode("get", forKey: .op)
                try part.encode(key.description, forKey: .key)
            case .set(let key, let value):
                try part.encode("set", forKey: .op)
                try part.encode(key.description, forKey: .key)
                try part.encode(KVCoding.text(value), forKey: .value)
            case .delete(let key):
                try part.encode("delete", forKey: .op)
                try part.encode(key.description, forKey: .key)
            case .deleteTree(let prefix):
                try part.encode("deleteTree", forKey: .op)
                try part.encode(prefix.description, forKey: .key)
            }
        }
    }
}

extension KVStore: Codable {
    private enum CodingKeys: String, CodingKey { case entries, lastChangeIndex, tombstones, tombstoneFloor }
    private enum EntryKeys: String, CodingKey { case key, value, createIndex, modifyIndex }
    private enum TombstoneKeys: String, CodingKey { case key, index }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        var list = try container.nestedUnkeyedContainer(forKey: .entries)
        var entries: [KVEntry] = []
        while !list.isAtEnd {
            let item = try list.nestedContainer(keyedBy: EntryKeys.self)
            entries.append(KVEntry(
                key: KVKey(trusted: Array(try item.decode(String.self, forKey: .key).utf8)),
                value: try KVCoding.value(try item.decode(String.self, forKey: .value), in: item.codingPath),
                createIndex: try item.decode(UInt64.self, forKey: .createIndex),
                modifyIndex: try item.decode(UInt64.self, forKey: .modifyIndex)))
        }
        let lastChangeIndex = try container.decode(UInt64.self, forKey: .lastChangeIndex)
        var tombstones: [KVKey: UInt64] = [:]
        if container.contains(.tombstones) {
            var list = try container.nestedUnkeyedContainer(forKey: .tombstones)
            while !list.isAtEnd {
                let item = try list.nestedContainer(keyedBy: TombstoneKeys.self)
                tombstones[KVKey(trusted: Array(try item.decode(String.self, forKey: .key).utf8))] = try item.decode(UInt64.self, forKey: .index)
            }
        }
        // A snapshot from before tombstones knows nothing of its deletes: answers about keys
        // that are gone report its last change, which is at least as new as any of them.
        let floor = try container.decodeIfPresent(UInt64.self, forKey: .tombstoneFloor) ?? lastChangeIndex
        self.init(entries: entries, tombstones: KVTombstones(indexes: tombstones, floor: floor), lastChangeIndex: lastChangeIndex)
    }

    /// Entries and tombstones in key order, so that equal stores give equal bytes.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        var items = container.nestedUnkeyedContainer(forKey: .entries)
        for entry in list(prefix: []) {
            var item = items.nestedContainer(keyedBy: EntryKeys.self)
            try item.encode(entry.key.description, forKey: .key)
            try item.encode(KVCoding.text(entry.value), forKey: .value)
            try item.encode(entry.createIndex, forKey: .createIndex)
            try item.encode(entry.modifyIndex, forKey: .modifyIndex)
        }
        try container.encode(lastChangeIndex, forKey: .lastChangeIndex)
        var graves = container.nestedUnkeyedContainer(forKey: .tombstones)
        for (key, index) in tombstones.indexes.sorted(by: { $0.key < $1.key }) {
            var item = graves.nestedContainer(keyedBy: TombstoneKeys.self)
            try item.encode(key.description, forKey: .key)
            try item.encode(index, forKey: .index)
        }
        try container.encode(tombstones.floor, forKey: .tombstoneFloor)
    }
}
