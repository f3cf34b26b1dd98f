// The catalog, turned once per change into what the query path needs: a hash table from each
// name (lowercase wire form) to the records it has, with addresses already binary. A query does
// one hash lookup; nothing is parsed, formatted or sorted per query.
//
// Names (DOMAIN is the catalog's domain):
//   NAME.service.DOMAIN                     A/AAAA of passing instances, SRV on their first port
//   TAG.NAME.service.DOMAIN                 the same, for instances carrying TAG
//   _PORT._tcp.NAME.service.DOMAIN          SRV on the port named PORT (RFC 2782 §"The format")
//   _PORT._tcp.TAG.NAME.service.DOMAIN      the same, for instances carrying TAG
//   NODE.node.DOMAIN                        A/AAAA of the node
//   HEX.addr.DOMAIN                         the address spelled in hex (8 or 32 digits): the SRV
//                                           target of an instance whose address is not its node's
//   ns.DOMAIN                               the name server of the SOA and NS records
//   DOMAIN                                  SOA and NS
// Every ancestor of these names up to DOMAIN exists too, with no records (an empty non-terminal,
// RFC 8020 §2: answering NXDOMAIN for `service.DOMAIN` would deny the names below it).
//
// A service whose instances all fail is NXDOMAIN, not NODATA. A name exists here when it has
// records, and only passing instances give records; so an all-failing service is the same, to a
// client, as one never registered or scaled to zero, which is what DESIGN.md §6 means by
// "registered only once healthy". Consul answers NXDOMAIN there too, so clients moved from it see
// no change. And RFC 8020's reading of NXDOMAIN ("nothing below") holds: its tag and port names
// are empty as well. The negative answer is cached for the SOA minimum either way (RFC 2308 §5).

/// The data at one name.
struct DNSZoneEntry: Sendable {
    var ipv4: [UInt32] = []
    var ipv6: [DNSIPv6] = []
    var services: [DNSServiceRecord] = []
    var isApex = false

    var isEmpty: Bool { ipv4.isEmpty && ipv6.isEmpty && services.isEmpty && !isApex }
}

/// An IPv6 address as two words, so that an entry's list is a flat array of 16-byte values.
struct DNSIPv6: Hashable, Comparable, Sendable {
    var high: UInt64
    var low: UInt64

    static func < (lhs: DNSIPv6, rhs: DNSIPv6) -> Bool {
        (lhs.high, lhs.low) < (rhs.high, rhs.low)
    }
}

/// One SRV record's RDATA (RFC 2782), its target an index into DNSZone.targets.
struct DNSServiceRecord: Hashable, Sendable {
    var priority: UInt16
    var weight: UInt16
    var port: UInt16
    var target: Int32
}

/// An SRV target: its full name, lowercase (RFC 2782 forbids compressing it), and the addresses
/// the additional section gives for it (RFC 2782: "...SHOULD include the A records").
struct DNSTarget: Sendable {
    var name: [UInt8]
    var ipv4: [UInt32]
    var ipv6: [DNSIPv6]
}

/// What the zone knows about a question's name.
enum DNSZoneLookup {
    /// The name is not under the zone's domain: REFUSED, as no recursion is offered.
    case outside
    /// Under the domain, but nothing there: NXDOMAIN.
    case nonexistent(domainOffset: Int)
    /// The name exists (possibly with no records of the asked type: NODATA).
    case found(DNSZoneEntry, domainOffset: Int)
}

/// The answers for one catalog, immutable; build one per catalog change, never per query.
public final class DNSZone: Sendable {
    /// The domain, lowercase wire form.
    let domain: [UInt8]
    /// The TTL of answers and the SOA minimum, in seconds.
    let ttlSeconds: UInt32
    let serial: UInt32
    let entries: [DNSWireName: DNSZoneEntry]
    let targets: [DNSTarget]
    /// The labels `ns` before the domain: the SOA's MNAME, the NS record's target.
    let nameserver: DNSTarget
    /// What of the catalog was left out, and why.
    public let problems: [DNSCatalogProblem]

    /// Builds the zone. Throws only when the domain is unusable; entries with names that cannot
    /// be DNS labels are left out and listed in `problems`, so that one bad name does not take
    /// every other answer away.
    public init(catalog: DNSCatalog) throws(DNSCatalogError) {
        let domainLabels = catalog.domain.split(separator: ".", omittingEmptySubsequences: false)
            .dropLast(catalog.domain.hasSuffix(".") ? 1 : 0)
        guard !domainLabels.isEmpty, domainLabels.allSatisfy(Self.isLabel) else {
            throw DNSCatalogError(
                code: "dns.domain.invalid",
                message: "domain \"\(catalog.domain)\" is not a name of 1–63 character labels of a-z, 0-9, - and _; use e.g. \"flotilla.\"")
        }
        let domain = DNSWireName(labels: domainLabels.map(String.init), suffix: [0]).bytes
        // Leave room under the domain for the longest names made here: a few labels of up to 63.
        guard domain.count <= 128 else {
            throw DNSCatalogError(code: "dns.domain.tooLong", message: "domain \"\(catalog.domain)\" is longer than 127 characters; choose a shorter one")
        }
        var builder = Builder(domain: domain)
        builder.build(catalog)
        self.domain = domain
        self.ttlSeconds = UInt32(clamping: max(0, catalog.ttl.components.seconds))
        self.serial = catalog.serial
        self.entries = builder.entries.mapValues { $0.entry() }
        self.targets = builder.targets
        self.nameserver = builder.nameserver
        self.problems = builder.problems
    }

    /// Looks a question's name up.
    func lookup(_ name: DNSWireName) -> DNSZoneLookup {
        guard let domainOffset = name.offset(ofSuffix: domain) else { return .outside }
        if let entry = entries[name] { return .found(entry, domainOffset: domainOffset) }
        if let address = Self.addressName(name, domainOffset: domainOffset) {
            var entry = DNSZoneEntry()
            switch address {
            case .ipv4(let value): entry.ipv4 = [value]
            case .ipv6(let high, let low): entry.ipv6 = [DNSIPv6(high: high, low: low)]
            }
            return .found(entry, domainOffset: domainOffset)
        }
        return .nonexistent(domainOffset: domainOffset)
    }

    /// `HEX.addr.DOMAIN` → the address, or nil.
    private static func addressName(_ name: DNSWireName, domainOffset: Int) -> DNSAddress? {
        let labels = name.labels(before: domainOffset)
        guard labels.count == 2, labels[1].map(DNSWireName.lowercase).elementsEqual("addr".utf8) else { return nil }
        let hex = labels[0]
        var high: UInt64 = 0
        var low: UInt64 = 0
        for (index, byte) in hex.enumerated() {
            let digit: UInt64
            switch DNSWireName.lowercase(byte) {
            case 0x30...0x39: digit = UInt64(byte - 0x30)
            case 0x61...0x66: digit = UInt64(DNSWireName.lowercase(byte) - 0x61 + 10)
            default: return nil
            }
            if index < 16 { high = high << 4 | digit } else { low = low << 4 | digit }
        }
        switch hex.count {
        case 8: return .ipv4(UInt32(truncatingIfNeeded: high))
        case 32: return .ipv6(high: high, low: low)
        default: return nil
        }
    }

    /// The label `HEX` of `HEX.addr.DOMAIN`.
    static func addressLabel(_ address: DNSAddress) -> String {
        func hex(_ value: UInt64, digits: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: digits - text.count) + text
        }
        switch address {
        case .ipv4(let value): return hex(UInt64(value), digits: 8)
        case .ipv6(let high, let low): return hex(high, digits: 16) + hex(low, digits: 16)
        }
    }

    /// A label this zone can serve: 1–63 bytes of letters, digits, `-` and `_`. Dots would split
    /// a name into other labels; other bytes are legal in DNS but not in our names.
    static func isLabel(_ text: Substring) -> Bool {
        (1...DNSWireLimit.labelBytes).contains(text.utf8.count)
            && text.utf8.allSatisfy { byte in
                switch byte {
                case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x5F: return true
                default: return false
                }
            }
    }

    /// Collects names and records into sets (deduplicated: RFC 2181 §5 forbids repeated records in
    /// an RRset, and two instances may share an address), then sorts them, so that a seeded
    /// shuffle replays exactly.
    private struct Builder {
        struct Pending {
            var ipv4: Set<UInt32> = []
            var ipv6: Set<DNSIPv6> = []
            var services: Set<DNSServiceRecord> = []
            var isApex = false

            mutating func add(_ address: DNSAddress) {
                switch address {
                case .ipv4(let value): ipv4.insert(value)
                case .ipv6(let high, let low): ipv6.insert(DNSIPv6(high: high, low: low))
                }
            }

            func entry() -> DNSZoneEntry {
                DNSZoneEntry(
                    ipv4: ipv4.sorted(), ipv6: ipv6.sorted(),
                    services: services.sorted { ($0.target, $0.port) < ($1.target, $1.port) }, isApex: isApex)
            }
        }

        let domain: [UInt8]
        var entries: [DNSWireName: Pending] = [:]
        var targets: [DNSTarget] = []
        var targetIndex: [String: Int32] = [:]
        var problems: [DNSCatalogProblem] = []
        var nameserver = DNSTarget(name: [], ipv4: [], ipv6: [])

        init(domain: [UInt8]) {
            self.domain = domain
        }

        mutating func build(_ catalog: DNSCatalog) {
            entries[DNSWireName(bytes: domain), default: Pending()].isApex = true
            // `addr` always has names below it (any hex address), so it always exists.
            _ = insert(["addr"]) { _ in }
            let nameserverName = DNSWireName(labels: ["ns"], suffix: domain)
            nameserver = DNSTarget(name: nameserverName.bytes, ipv4: [], ipv6: [])
            _ = insert(["ns"]) { pending in
                for address in catalog.nameserverAddresses { pending.add(address) }
            }
            if let entry = entries[nameserverName] {
                nameserver.ipv4 = entry.entry().ipv4
                nameserver.ipv6 = entry.entry().ipv6
            }

            var nodeAddresses: [String: Set<DNSAddress>] = [:]
            for (index, node) in catalog.nodes.enumerated() {
                guard isLabel(node.name, path: "nodes[\(index)].name") else { continue }
                let key = node.name.lowercased()
                nodeAddresses[key, default: []].formUnion(node.addresses)
                _ = insert([node.name, "node"]) { pending in
                    for address in node.addresses { pending.add(address) }
                }
            }

            for (index, instance) in catalog.instances.enumerated() where instance.passing {
                let path = "instances[\(index)]"
                guard isLabel(instance.service, path: path + ".service") else { continue }
                let tags = instance.tags.enumerated().filter { isLabel($0.element, path: path + ".tags[\($0.offset)]") }
                    .map(\.element)
                let ports = instance.ports.enumerated().filter { position, port in
                    guard let name = port.name else { return true }
                    return isLabel("_" + name, path: path + ".ports[\(position)].name")
                }.map(\.element)
                let target = self.target(for: instance, nodeAddresses: nodeAddresses, path: path)

                // The plain and the tagged names of the service.
                let owners = [[instance.service, "service"]] + tags.map { [$0, instance.service, "service"] }
                for owner in owners {
                    _ = insert(owner, path: path) { pending in
                        pending.add(instance.address)
                        if let target, let port = ports.first {
                            pending.services.insert(DNSServiceRecord(priority: 1, weight: instance.weight, port: port.number, target: target))
                        }
                    }
                    guard let target else { continue }
                    for port in ports {
                        guard let name = port.name else { continue }
                        _ = insert(["_" + name, "_tcp"] + owner, path: path) { pending in
                            pending.services.insert(DNSServiceRecord(priority: 1, weight: instance.weight, port: port.number, target: target))
                        }
                    }
                }
            }
        }

        /// The SRV target of an instance: its node's name when the node has the instance's
        /// address (the common case: the node's address and a published port), else the
        /// address's own `HEX.addr.DOMAIN` name, so that the additional section and a later
        /// lookup of the target agree on exactly the address the instance listens on.
        mutating func target(for instance: DNSInstance, nodeAddresses: [String: Set<DNSAddress>], path: String) -> Int32? {
            let byNode = DNSZone.isLabel(Substring(instance.node))
                && nodeAddresses[instance.node.lowercased()]?.contains(instance.address) == true
            let labels = byNode ? [instance.node, "node"] : [DNSZone.addressLabel(instance.address), "addr"]
            let key = labels.joined(separator: ".").lowercased()
            if let index = targetIndex[key] { return index }
            let name = DNSWireName(labels: labels, suffix: domain)
            guard name.bytes.count <= DNSWireLimit.nameBytes else {
                problems.append(DNSCatalogProblem(path: path + ".node", message: "the SRV target \(key) is too long a name; no SRV records for this instance"))
                return nil
            }
            var ipv4: [UInt32] = []
            var ipv6: [DNSIPv6] = []
            for address in byNode ? (nodeAddresses[instance.node.lowercased()] ?? []).sorted(by: Self.order) : [instance.address] {
                switch address {
                case .ipv4(let value): ipv4.append(value)
                case .ipv6(let high, let low): ipv6.append(DNSIPv6(high: high, low: low))
                }
            }
            let index = Int32(targets.count)
            targets.append(DNSTarget(name: name.bytes, ipv4: ipv4, ipv6: ipv6))
            targetIndex[key] = index
            return index
        }

        static func order(_ lhs: DNSAddress, _ rhs: DNSAddress) -> Bool {
            switch (lhs, rhs) {
            case (.ipv4(let a), .ipv4(let b)): return a < b
            case (.ipv4, .ipv6): return true
            case (.ipv6, .ipv4): return false
            case (.ipv6(let ah, let al), .ipv6(let bh, let bl)): return (ah, al) < (bh, bl)
            }
        }

        /// Adds records at `labels` + domain, and the empty ancestors up to the domain. Returns
        /// false (with a problem) when the name would exceed 255 octets.
        mutating func insert(_ labels: [String], path: String = "", _ update: (inout Pending) -> Void) -> Bool {
            let name = DNSWireName(labels: labels, suffix: domain)
            guard name.bytes.count <= DNSWireLimit.nameBytes else {
                problems.append(DNSCatalogProblem(path: path, message: "the name \(labels.joined(separator: ".")) under the domain is longer than 255 octets; left out"))
                return false
            }
            update(&entries[name, default: Pending()])
            for start in 1..<labels.count {
                let ancestor = DNSWireName(labels: Array(labels[start...]), suffix: domain)
                if entries[ancestor] == nil { entries[ancestor] = Pending() }
            }
            return true
        }

        mutating func isLabel(_ text: String, path: String) -> Bool {
            if DNSZone.isLabel(Substring(text)) { return true }
            problems.append(DNSCatalogProblem(path: path, message: "\"\(text)\" is not a DNS label (1–63 of a-z, 0-9, - and _); left out"))
            return false
        }
    }
}
