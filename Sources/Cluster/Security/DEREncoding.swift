import SwiftASN1

/// DER bytes of anything swift-asn1 can serialize (its one-call helper is internal to it).
enum DEREncoding {
    static func bytes(of element: some DERSerializable) throws -> [UInt8] {
        var serializer = DER.Serializer()
        try serializer.serialize(element)
        return serializer.serializedBytes
    }
}
