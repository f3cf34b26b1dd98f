#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// IP addresses as a certificate's `iPAddress` names hold them: the 4 or 16 bytes in network
/// order (RFC 5280 §4.2.1.6), parsed by the C library's `inet_pton` rather than by hand.
enum IPAddressBytes {
    /// The address bytes of `text` (dotted IPv4 or IPv6 text).
    static func parse(_ text: String) throws(ClusterSecurityError) -> [UInt8] {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        throw .invalidIPAddress(text)
    }

    /// Text for 4 or 16 address bytes, for messages; other lengths as hex.
    static func text(_ bytes: some Collection<UInt8>) -> String {
        let family: Int32
        switch bytes.count {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return bytes.map { String($0, radix: 16) }.joined(separator: ":")
        }
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let address = Array(bytes)
        let converted = address.withUnsafeBytes { source in
            inet_ntop(family, source.baseAddress, &buffer, socklen_t(buffer.count)) != nil
        }
        guard converted else { return address.map { String($0, radix: 16) }.joined(separator: ":") }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
