import AgentAPI
import Controller
import Foundation

/// A transaction as the API sends it (`KVTransactionRequest`), checked and turned into the
/// store's: every problem names its place in the body (`operations[2].value`).
enum KVRequestDecoding {
    static func transaction(_ request: Components.Schemas.KVTransactionRequest) throws(APIError) -> KVTransaction {
        var compares: [KVCompare] = []
        for (position, compare) in (request.compares ?? []).enumerated() {
            let place = "compares[\(position)]"
            let key = try key(compare.key, at: place)
            switch (compare.modifyIndex, compare.value) {
            case (let index?, nil):
                guard index >= 0 else { throw refusal("\(place).modifyIndex is negative; 0 means the key does not exist", at: "\(place).modifyIndex") }
                compares.append(.modifyIndex(key, equals: UInt64(index)))
            case (nil, let text?):
                compares.append(.value(key, equals: try value(text, at: "\(place).value")))
            default:
                throw refusal("\(place) compares either modifyIndex or value: give exactly one of them", at: place)
            }
        }
        var operations: [KVOperation] = []
        for (position, operation) in request.operations.enumerated() {
            let place = "operations[\(position)]"
            let key = try key(operation.key, at: "\(place).key")
            if operation.op == .set {
                guard let text = operation.value else { throw refusal("\(place) sets \(key) but has no value", at: "\(place).value") }
                operations.append(.set(key, try value(text, at: "\(place).value")))
                continue
            }
            guard operation.value == nil else {
                throw refusal("\(place) is a \(operation.op.rawValue), which takes no value; only set does", at: "\(place).value")
            }
            switch operation.op {
            case .get: operations.append(.get(key))
            case .delete: operations.append(.delete(key))
            case .deleteTree: operations.append(.deleteTree(prefix: key))
            case .set: break
            }
        }
        return KVTransaction(compares: compares, operations: operations)
    }

    /// `text` as a key, or the store's refusal located at `place` (a path parameter or a
    /// place in the body).
    static func key(_ text: String, at place: String) throws(APIError) -> KVKey {
        do {
            return try KVKey(validating: text)
        } catch {
            var refusal = APIMapping.error(error)
            refusal.path = place
            throw refusal
        }
    }

    /// Standard base64 with padding, strictly: a value that is not is refused rather than
    /// read as whatever its valid characters happen to spell.
    static func value(_ text: String, at place: String) throws(APIError) -> [UInt8] {
        guard let data = Data(base64Encoded: text) else {
            throw refusal("\(place) is not base64 (RFC 4648 §4, with padding)", at: place)
        }
        return Array(data)
    }

    private static func refusal(_ message: String, at place: String) -> APIError {
        APIError(code: ControllerError.invalidTransaction("").code, message: message, path: place)
    }
}
