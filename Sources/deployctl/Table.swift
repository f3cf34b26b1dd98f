/// Plain aligned columns, as kubectl and nomad print them.
struct Table {
    var headers: [String]
    var rows: [[String]] = []

    init(_ headers: String...) {
        self.headers = headers
    }

    mutating func add(_ cells: String...) {
        rows.append(cells)
    }

    func render(_ terminal: Terminal) -> String {
        var widths = headers.map(\.count)
        for row in rows {
            for (column, cell) in row.enumerated() where column < widths.count {
                widths[column] = max(widths[column], cell.count)
            }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                column == cells.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count + 2)
            }.joined()
        }
        var text = terminal.paint(line(headers), .bold) + "\n"
        for row in rows { text += line(row) + "\n" }
        return text
    }
}

/// "3m12s ago" for a Unix time in milliseconds.
func age(since unixMilliseconds: Int64) -> String {
    let seconds = max(0, (currentUnixMilliseconds() - unixMilliseconds) / 1000)
    if seconds < 60 { return "\(seconds)s" }
    if seconds < 3600 { return "\(seconds / 60)m\(seconds % 60)s" }
    if seconds < 86400 { return "\(seconds / 3600)h\(seconds / 60 % 60)m" }
    return "\(seconds / 86400)d\(seconds / 3600 % 24)h"
}

func currentUnixMilliseconds() -> Int64 {
    var time = timespec()
    clock_gettime(CLOCK_REALTIME, &time)
    return Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000
}

/// "128Mi" for a byte count.
func bytesText(_ bytes: Int64) -> String {
    let units = [("Gi", Int64(1) << 30), ("Mi", Int64(1) << 20), ("Ki", Int64(1) << 10)]
    for (suffix, size) in units where bytes >= size {
        let value = Double(bytes) / Double(size)
        return value >= 10 || value == value.rounded() ? "\(Int64(value.rounded()))\(suffix)" : "\((value * 10).rounded() / 10)\(suffix)"
    }
    return "\(bytes)B"
}

#if canImport(Glibc)
import Glibc
#endif
