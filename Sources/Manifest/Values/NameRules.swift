/// The spelling rules of names and paths in a manifest, each returning what to write instead.
enum NameRules {
    /// RFC 1123 label: what service names, application names and port names must be, so that
    /// they can appear in DNS names (`web.myapp.service.flotilla`) and environment variables.
    static func dnsLabelProblem(_ text: String, maxLength: Int = 63) -> String? {
        if isDNSLabel(text, maxLength: maxLength) { return nil }
        if text.isEmpty { return "must not be empty; write a name such as \"web\"" }
        let lowered = text.lowercased()
        var fixed = String(lowered.map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "-" })
        while fixed.hasPrefix("-") { fixed.removeFirst() }
        while fixed.hasSuffix("-") { fixed.removeLast() }
        let suggestion = fixed.isEmpty || fixed.first?.isLetter != true ? "" : "; write \"\(fixed.prefix(maxLength))\""
        if text.utf8.count > maxLength {
            return "\"\(text)\" is longer than \(maxLength) characters\(suggestion)"
        }
        if text != lowered, lowered.utf8.allSatisfy(isLabelByte) {
            return "\"\(text)\" must be lowercase\(suggestion)"
        }
        if !text.utf8.allSatisfy(isLabelByte) {
            return "\"\(text)\" may contain only lowercase letters, digits and '-'\(suggestion)"
        }
        if let first = text.utf8.first, !(UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first) {
            return "\"\(text)\" must start with a letter\(suggestion)"
        }
        if text.hasSuffix("-") {
            return "\"\(text)\" must not end with '-'\(suggestion)"
        }
        return nil
    }

    /// The common case, checked without allocating.
    private static func isDNSLabel(_ text: String, maxLength: Int) -> Bool {
        let bytes = text.utf8
        guard let first = bytes.first, let last = bytes.last, bytes.count <= maxLength,
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(first), last != UInt8(ascii: "-")
        else { return false }
        return bytes.allSatisfy(isLabelByte)
    }

    /// A host name: dot-separated labels (digits and uppercase allowed as the kernel allows).
    static func hostnameProblem(_ text: String) -> String? {
        if text.isEmpty { return "must not be empty" }
        if text.utf8.count > 64 { return "\"\(text)\" is longer than 64 characters, the kernel's limit for a host name" }
        for label in text.split(separator: ".", omittingEmptySubsequences: false) {
            let bytes = Array(label.utf8)
            let valid = !bytes.isEmpty && bytes.count <= 63 && bytes.first != UInt8(ascii: "-") && bytes.last != UInt8(ascii: "-")
                && bytes.allSatisfy { isLabelByte($0) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }
            if !valid {
                return "\"\(text)\" is not a valid host name; use letters, digits and '-' in dot-separated parts, e.g. \"web-1\""
            }
        }
        return nil
    }

    /// An absolute, normalised path: what the kernel will be handed for mounts and chdir.
    static func absolutePathProblem(_ text: String) -> String? {
        if isNormalAbsolutePath(text) { return nil }
        if text.isEmpty { return "must not be empty; write an absolute path such as \"/data\"" }
        if text.utf8.contains(0) { return "must not contain a NUL character" }
        guard text.hasPrefix("/") else { return "\"\(text)\" is not absolute; write \"/\(text)\"" }
        let parts = text.split(separator: "/", omittingEmptySubsequences: true)
        if parts.contains("..") { return "\"\(text)\" contains '..'; write the path without it" }
        let normal = "/" + parts.filter { $0 != "." }.joined(separator: "/")
        if normal != text { return "\"\(text)\" is not in normal form; write \"\(normal)\"" }
        if text.utf8.count > 4095 { return "is longer than 4095 bytes (PATH_MAX)" }
        return nil
    }

    /// The common case, checked without allocating: starts with '/', no empty, '.' or '..'
    /// component, no trailing '/', no NUL.
    private static func isNormalAbsolutePath(_ text: String) -> Bool {
        let bytes = text.utf8
        guard bytes.first == UInt8(ascii: "/"), bytes.count <= 4095 else { return false }
        if bytes.count == 1 { return true }
        var componentLength = 0
        var dots = 0
        for byte in bytes.dropFirst() {
            if byte == 0 { return false }
            if byte == UInt8(ascii: "/") {
                if componentLength == 0 || componentLength == dots && dots <= 2 { return false }
                componentLength = 0
                dots = 0
            } else {
                componentLength += 1
                if byte == UInt8(ascii: ".") { dots += 1 }
            }
        }
        return componentLength > 0 && !(componentLength == dots && dots <= 2)
    }

    /// A POSIX environment variable name.
    static func environmentNameProblem(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard let first = bytes.first else { return "an environment variable name must not be empty" }
        let valid = (isLetter(first) || first == UInt8(ascii: "_"))
            && bytes.allSatisfy { isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") }
        if valid { return nil }
        var fixed = String(text.map { ($0.isASCII && ($0.isLetter || $0.isNumber)) ? $0 : "_" })
        if fixed.first?.isNumber == true { fixed = "_" + fixed }
        return "\"\(text)\" is not a valid environment variable name (letters, digits and '_', not starting with a digit); write \"\(fixed)\""
    }

    private static func isLabelByte(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || isDigit(byte) || byte == UInt8(ascii: "-")
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isDigit(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
