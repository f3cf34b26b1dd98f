import Foundation

/// What a server logged during a stretch of the run: warnings and worse, grouped by message.
enum ServerLog {
    static func size(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.intValue ?? 0
    }

    /// "12x warning: <message> (e.g. <the first line>)", most frequent first. A line reads
    /// `<time> <level> agentd: <metadata> [<Module>] <message>`.
    static func summary(_ path: String, from offset: Int) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: path) else { return [] }
        defer { try? handle.close() }
        try? handle.seek(toOffset: UInt64(offset))
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        var groups: [String: (count: Int, example: String)] = [:]
        for line in text.split(separator: "\n") {
            let words = line.split(separator: " ", maxSplits: 2)
            guard words.count == 3, ["warning", "error", "critical"].contains(words[1]) else { continue }
            var message = String(words[2])
            if let bracket = message.range(of: "] ") { message = String(message[bracket.upperBound...]) }
            let key = "\(words[1]): \(message)"
            if let group = groups[key] {
                groups[key] = (group.count + 1, group.example)
            } else {
                groups[key] = (1, String(line.prefix(400)))
            }
        }
        return groups.sorted { $0.value.count > $1.value.count }.map { "\($0.value.count)x \($0.key)\n      e.g. \($0.value.example)" }
    }
}
