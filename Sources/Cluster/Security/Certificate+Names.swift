import X509

extension DistinguishedName {
    /// The first common name (OID 2.5.4.3) as text, if any.
    var commonName: String? {
        for relativeName in self {
            for attribute in relativeName where attribute.type == .RDNAttributeType.commonName {
                if let text = String(attribute.value) { return text }
            }
        }
        return nil
    }
}

extension Certificate {
    /// The `dNSName` entries of the subject alternative names (RFC 5280 §4.2.1.6): for a node
    /// certificate, the node name. Empty when the extension is absent or unreadable.
    var dnsNames: [String] {
        guard let names = try? extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            if case .dnsName(let text) = name { return text }
            return nil
        }
    }

    /// The `iPAddress` entries of the subject alternative names, as text.
    var ipAddressNames: [String] {
        guard let names = try? extensions.subjectAlternativeNames else { return [] }
        return names.compactMap { name in
            if case .ipAddress(let octets) = name { return IPAddressBytes.text(octets.bytes) }
            return nil
        }
    }

    /// How messages name the holder: its node name (first dNSName), else its common name, else
    /// the whole subject.
    var holderName: String {
        dnsNames.first ?? subject.commonName ?? subject.description
    }

    /// Whether basicConstraints says this is a CA (RFC 5280 §4.2.1.9). An unreadable extension
    /// counts as a CA, so that such a certificate is never taken for a node's.
    var isCertificateAuthority: Bool {
        do {
            guard let constraints = try extensions.basicConstraints else { return false }
            if case .isCertificateAuthority = constraints { return true }
            return false
        } catch {
            return true
        }
    }
}

extension Duration {
    /// The duration in seconds as Foundation counts them, for `Date` arithmetic.
    var timeIntervalSeconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
